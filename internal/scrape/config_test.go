package scrape

import (
	"strings"
	"testing"
	"time"
)

func TestDefaultConfig(t *testing.T) {
	t.Parallel()
	c := DefaultSources()
	if len(c.Sources) < 10 || c.Concurrency != 16 || time.Duration(c.Timeout) != 30*time.Second ||
		c.MaxSize != 16<<20 || c.Retries != 2 || c.CIDRCap != 65536 || c.Hostnames {
		t.Fatalf("defaults: %+v", c)
	}
	// What --print-config prints is a valid configuration giving the same values.
	dir := t.TempDir()
	got, err := LoadConfig(writeFile(t, dir, "c.toml", string(DefaultConfig())))
	if err != nil || len(got.Sources) != len(c.Sources) || got.Concurrency != c.Concurrency {
		t.Fatalf("printed config reads back as %+v, %v", got, err)
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, c := range []struct{ name, text, want string }{
		{"syntax", "concurrency = \n", "c.toml:1:"},
		{"unknown key", "concurrency = 3\n\n[[source]]\nurl = \"http://x/\"\nformt = \"json\"\n", `c.toml:5:1: unknown key "source.formt"`},
		{"bad duration", "timeout = \"soon\"\n", "c.toml:1:"},
		{"bad size", "max_size = \"lots\"\n", "c.toml:1:"},
		{"no url", "[[source]]\nname = \"a\"\n", "c.toml: source[1] (a): url or file is required"},
		{"both", "[[source]]\nurl = \"http://x/\"\nfile = \"f\"\n", "exclude each other"},
		{"ftp", "[[source]]\nurl = \"ftp://u:secret@x/\"\n", `url "ftp://***@x/": want an http`},
		{"format", "[[source]]\nfile = \"f\"\nformat = \"xml\"\n", `format "xml"`},
		{"protocol", "[[source]]\nfile = \"f\"\nprotocol = \"ftp\"\n", `protocol "ftp"`},
		{"dup", "[[source]]\nfile = \"f\"\n[[source]]\nfile = \"f\"\n", `name "f" already used by source[1]`},
		{"range", "concurrency = 0\nretries = 99\n", "concurrency: 0: want 1-1024"},
		{"upstream", "proxy = \"ftp://u:pw@h:1\"\n", "proxy: \"ftp://***@h:1\""},
	} {
		_, err := LoadConfig(writeFile(t, dir, "c.toml", c.text))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: error shows a password: %v", c.name, err)
		}
	}
	c, err := LoadConfig(writeFile(t, dir, "c.toml", "max_size = 1000\nretries = 0\n[[source]]\nfile = \"f\"\nenabled = false\n"))
	if err != nil || c.MaxSize != 1000 || c.Retries != 0 || c.Sources[0].enabled() || c.Concurrency != 16 {
		t.Errorf("overrides: %+v, %v", c, err)
	}
}

func TestParseSize(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int64{"16MiB": 16 << 20, "512 KiB": 512 << 10, "1000": 1000, "2GB": 2e9, "10B": 10} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "-1", "0", "1TiB", "x"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q): no error", in)
		}
	}
}

// FuzzParseConfig: any file gives a configuration or an error naming the file, never a panic;
// what it accepts passes validation with the documented ranges.
func FuzzParseConfig(f *testing.F) {
	f.Add(DefaultConfig())
	f.Add([]byte("concurrency = 3\n[[source]]\nurl = \"http://u:p@127.0.0.1:1/x\"\nformat = \"json\"\njson_path = \"a.b\"\n"))
	f.Add([]byte("max_size = \"1GiB\"\ntimeout = \"1s\"\n[[source]]\nfile = \"f\"\nheaders = { A = \"b\" }\nbasic_auth = { user = \"u\", password = \"p\" }\n"))
	f.Add([]byte("[[source]]\nfile = \"f\"\nprotocol = \"socks5\"\nenabled = false\n[[source]]\nfile = \"f\"\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := parseConfig(b, "f.toml", false)
		if err != nil {
			if !strings.Contains(err.Error(), "f.toml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if c.Concurrency < 1 || c.MaxSize <= 0 || c.Retries < 0 || c.CIDRCap < 0 {
			t.Fatalf("accepted out of range: %+v", c)
		}
		if err := c.validate("f.toml"); err != nil {
			t.Fatalf("accepted, then invalid: %v", err)
		}
	})
}

// FuzzParseSize: a size is positive and at most 1 TiB, or an error quoting the input.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"16MiB", "512 KiB", "1000", "2GB", "10B", "-1", "1TiB", "9223372036854775807GiB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err != nil {
			if n != 0 || !strings.Contains(err.Error(), "size ") {
				t.Fatalf("ParseSize(%q) = %d, %v", s, n, err)
			}
			return
		}
		if n <= 0 || n > 1<<40 {
			t.Fatalf("ParseSize(%q) = %d: out of range", s, n)
		}
	})
}
