package proxy

import (
	"errors"
	"testing"

	"github.com/proxyline/proxyline/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want Proxy
	}{
		{"http://1.2.3.4:8080", Proxy{Scheme: HTTP, Host: "1.2.3.4", Port: 8080}},
		{"  https://example.com:443/ ", Proxy{Scheme: HTTPS, Host: "example.com", Port: 443}},
		{"HTTP://Proxy.Example.COM:3128", Proxy{Scheme: HTTP, Host: "proxy.example.com", Port: 3128}},
		{"socks4://10.0.0.1:1080", Proxy{Scheme: SOCKS4, Host: "10.0.0.1", Port: 1080}},
		{"socks4a://10.0.0.1:1080", Proxy{Scheme: SOCKS4A, Host: "10.0.0.1", Port: 1080}},
		{"socks5://u:p@10.0.0.1:1080", Proxy{Scheme: SOCKS5, Host: "10.0.0.1", Port: 1080, User: "u", Password: "p"}},
		{"socks5h://10.0.0.1:1080", Proxy{Scheme: SOCKS5, Host: "10.0.0.1", Port: 1080}},
		{"socks5://[2001:db8::1]:1080", Proxy{Scheme: SOCKS5, Host: "2001:db8::1", Port: 1080}},
		{"socks5://[2001:DB8:0::1]:1080", Proxy{Scheme: SOCKS5, Host: "2001:db8::1", Port: 1080}},
		{"http://user:p%40ss%3Aw@h:1", Proxy{Scheme: HTTP, Host: "h", Port: 1, User: "user", Password: "p@ss:w"}},
		{"http://user:p@ss@h:1", Proxy{Scheme: HTTP, Host: "h", Port: 1, User: "user", Password: "p@ss"}},
		{"http://user:50%off@h:1", Proxy{Scheme: HTTP, Host: "h", Port: 1, User: "user", Password: "50%off"}},
		{"http://user@h:1", Proxy{Scheme: HTTP, Host: "h", Port: 1, User: "user"}},
		{"http://u:p/q@h:1", Proxy{Scheme: HTTP, Host: "h", Port: 1, User: "u", Password: "p/q"}},
		{"1.2.3.4:80", Proxy{Host: "1.2.3.4", Port: 80}},
		{"1.2.3.4:08080", Proxy{Host: "1.2.3.4", Port: 8080}},
		{"[::1]:8080", Proxy{Host: "::1", Port: 8080}},
		{"localhost:65535", Proxy{Host: "localhost", Port: 65535}},
		{"1.2.3.4:80:bob:secret", Proxy{Host: "1.2.3.4", Port: 80, User: "bob", Password: "secret"}},
		{"1.2.3.4:80:bob:se:cr@et", Proxy{Host: "1.2.3.4", Port: 80, User: "bob", Password: "se:cr@et"}},
		{"[::1]:80:bob:secret", Proxy{Host: "::1", Port: 80, User: "bob", Password: "secret"}},
		{"h:1::", Proxy{Host: "h", Port: 1}},
		{"bob:secret@1.2.3.4:80", Proxy{Host: "1.2.3.4", Port: 80, User: "bob", Password: "secret"}},
		{"bob:se:cret@1.2.3.4:80", Proxy{Host: "1.2.3.4", Port: 80, User: "bob", Password: "se:cret"}},
		{"b@b:s@[::1]:80", Proxy{Host: "::1", Port: 80, User: "b@b", Password: "s"}},
		{"my_host-1.example:80", Proxy{Host: "my_host-1.example", Port: 80}},
		{"[::ffff:1.2.3.4]:80", Proxy{Host: "::ffff:1.2.3.4", Port: 80}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("Parse(%q) = %#v, want %#v", tt.in, got, tt.want)
			}
			again, err := Parse(got.String())
			if err != nil || again != got {
				t.Fatalf("Parse(String()) of %q: %q gives %#v, %v", tt.in, got.String(), again, err)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in    string
		field string
		want  error
		msg   string
	}{
		{"", "", ErrSyntax, ""},
		{"1.2.3.4:99999", "port", ErrPortRange, `port: "99999" out of range 1-65535`},
		{"1.2.3.4:0", "port", ErrPortRange, `port: "0" out of range 1-65535`},
		{"1.2.3.4:123456789012345678901234567890", "port", ErrPortRange, ""},
		{"1.2.3.4:http", "port", ErrPortSyntax, `port: "http" is not a port number`},
		{"1.2.3.4:-1", "port", ErrPortSyntax, ""},
		{"1.2.3.4", "port", ErrMissing, "port: missing"},
		{"1.2.3.4:", "port", ErrMissing, ""},
		{"http://1.2.3.4", "port", ErrMissing, ""},
		{"ftp://1.2.3.4:21", "scheme", ErrScheme, `scheme: "ftp" is not a known scheme`},
		{"socks6://1.2.3.4:21", "scheme", ErrScheme, ""},
		{"http://:80", "host", ErrMissing, "host: missing"},
		{":80", "host", ErrMissing, ""},
		{"1.2.3.4 8080", "", ErrSyntax, `"1.2.3.4 8080" is not a proxy`},
		{"http://a/b:80", "host", ErrHost, ""},
		{"a!b:80", "host", ErrHost, `host: "a!b" is not a valid host name`},
		{"999.1.1.1:80", "host", ErrHost, ""},
		{"::1:8080", "host", ErrIPv6, ""},
		{"2001:db8::1:8080", "host", ErrIPv6, ""},
		{"http://2001:db8::1:8080", "host", ErrIPv6, ""},
		{"socks5://::1:1080", "host", ErrIPv6, ""},
		{"fe80::1", "host", ErrIPv6, ""},
		{"[1.2.3.4]:80", "host", ErrHost, ""},
		{"[::1:80", "host", ErrHost, ""},
		{"[fe80::1%eth0]:80", "host", ErrHost, ""},
		{"[::1]x80", "", ErrSyntax, ""},
		{"1.2.3.4:80:bob", "password", ErrMissing, ""},
		{"bob:pw@1.2.3.4:99999", "port", ErrPortRange, ""},
		{"1.2.3.4:99999:bob:p@ss", "port", ErrPortRange, ""},
		{"http://u%0A:p@h:1", "user", ErrCredentials, ""},
		{"http://u:%ff@h:1", "password", ErrCredentials, ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			p, err := Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse(%q) = %#v, want error", tt.in, p)
			}
			var le *LineError
			if !errors.As(err, &le) {
				t.Fatalf("Parse(%q) error %T, want *LineError", tt.in, err)
			}
			if le.Field != tt.field || !errors.Is(err, tt.want) {
				t.Fatalf("Parse(%q) = %v (field %q), want field %q and %v", tt.in, err, le.Field, tt.field, tt.want)
			}
			if tt.msg != "" && !hasPrefix(err.Error(), tt.msg) {
				t.Fatalf("Parse(%q) error %q, want it to start %q", tt.in, err, tt.msg)
			}
		})
	}
}

func hasPrefix(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }

func TestLineErrorText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		e    LineError
		want string
	}{
		{LineError{File: "proxies.txt", Line: 17, Field: "port", Text: "99999", Err: ErrPortRange}, `proxies.txt:17: port: "99999" out of range 1-65535`},
		{LineError{Line: 3, Field: "host", Err: ErrMissing}, `line 3: host: missing`},
		{LineError{File: "x.csv", Err: ErrLineTooLong}, `x.csv: "" line longer than 1 MiB`},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	long := fieldError("host", string(make([]byte, 1000)), ErrHost)
	if len(long.Text) > maxText+len("…") {
		t.Errorf("Text kept %d bytes, want at most %d", len(long.Text), maxText)
	}
}

func TestParseFormat(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]Format{"": Auto, "auto": Auto, "TEXT": Text, "txt": Text, "jsonl": JSONL, "json": JSONL, "ndjson": JSONL, "csv": CSV} {
		if got, err := ParseFormat(in); err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseFormat("xml"); err == nil {
		t.Error("ParseFormat(xml) succeeded")
	}
	for in, want := range map[string]Format{"a.jsonl": JSONL, "b.CSV": CSV, "c.txt": Text, "d": Text, "e.json": JSONL} {
		if got := FormatOf(in); got != want {
			t.Errorf("FormatOf(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRedacted(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		p    Proxy
		want string
	}{
		{Proxy{Scheme: SOCKS5, Host: "h", Port: 1, User: "u", Password: "s3cret"}, "socks5://u:xxxxx@h:1"},
		{Proxy{Host: "h", Port: 1, User: "u", Password: "s3cret"}, "h:1:u:xxxxx"},
		{Proxy{Scheme: HTTP, Host: "h", Port: 1, User: "u"}, "http://u:@h:1"}, // as String writes it
		{Proxy{Scheme: HTTP, Host: "::1", Port: 1}, "http://[::1]:1"},
	} {
		if got := tt.p.Redacted(); got != tt.want {
			t.Errorf("%#v.Redacted() = %q, want %q", tt.p, got, tt.want)
		}
	}
}

func TestFromFields(t *testing.T) {
	t.Parallel()
	p, err := FromFields("SOCKS5h", "[2001:db8::1]", "1080", "u", "p")
	if err != nil || p != (Proxy{Scheme: SOCKS5, Host: "2001:db8::1", Port: 1080, User: "u", Password: "p"}) {
		t.Fatalf("FromFields = %+v, %v", p, err)
	}
	for _, c := range [][5]string{{"ftp", "1.2.3.4", "80"}, {"", "1.2.3", "80"}, {"", "1.2.3.4", "0"}, {"", "", "80"}} {
		var le *LineError
		if _, err := FromFields(c[0], c[1], c[2], c[3], c[4]); !errors.As(err, &le) {
			t.Errorf("FromFields(%q) = %v, want a *LineError", c, err)
		}
	}
}
