package run

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pelletier/go-toml/v2"
)

func TestDefaultConfigRoundTrips(t *testing.T) {
	def := Default()
	// The printed text parses to the defaults.
	c, err := ParseConfig(DefaultConfig(), "printed.toml")
	if err != nil {
		t.Fatalf("--print-config does not parse: %v", err)
	}
	if !same(t, c, def) {
		t.Fatalf("--print-config parses to %+v, want the defaults %+v", c, def)
	}
	// Every key of the struct is in the printed text: encode the defaults and parse that too.
	b, err := toml.Marshal(def)
	if err != nil {
		t.Fatal(err)
	}
	var keys map[string]any
	if err := toml.Unmarshal(b, &keys); err != nil {
		t.Fatal(err)
	}
	var printed map[string]any
	if err := toml.Unmarshal(DefaultConfig(), &printed); err != nil {
		t.Fatal(err)
	}
	for section, v := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			continue
		}
		pm, _ := printed[section].(map[string]any)
		for k := range m {
			if k == "source" {
				continue // sources are an example in a comment
			}
			if _, ok := pm[k]; !ok {
				t.Errorf("key %s.%s is missing from --print-config", section, k)
			}
		}
	}
	c2, err := ParseConfig(b, "marshalled.toml")
	if err != nil || !same(t, c2, def) {
		t.Fatalf("marshalled defaults parse to %+v, %v", c2, err)
	}
}

func TestConfigErrorsNameFileLineAndKey(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string
	}{
		{"unknown key", "[schedule]\ntick = \"1s\"\nrecheck = \"1m\"\n", []string{"run.toml:3:", `unknown key "schedule.recheck"`}},
		{"unknown section", "\n[sheduler]\ntick = \"1s\"\n", []string{"run.toml:2:", "sheduler"}},
		{"wrong type", "[workers]\n\nprocesses = \"two\"\n", []string{"run.toml:3:", `"workers.processes"`}},
		{"bad duration", "[schedule]\nlease = \"ten minutes\"\n", []string{"run.toml:2:", `"schedule.lease"`, "Go duration"}},
		{"negative duration", "[workers]\ngrace = \"-1s\"\n", []string{"run.toml:2:", `"workers.grace"`, "negative"}},
		{"syntax", "[workers\n", []string{"run.toml:1:"}},
		{"bad value", "[schedule]\ndead_backoff_factor = 0.5\n", []string{"run.toml: schedule.dead_backoff_factor: 0.5"}},
		{"bad protocol", "[check]\nprotocols = [\"gopher\"]\n", []string{"check.protocols", "gopher"}},
		{"exposed console", "[console]\nlisten = \"0.0.0.0:8081\"\n", []string{"console", "not a loopback address"}},
		{"exposed rotator", "[rotate]\nlisten = \":8089\"\n", []string{"rotate", "not a loopback address"}},
		{"deadline too short", "[shutdown]\ndeadline = \"10s\"\n", []string{"shutdown.deadline", "rotate.drain + workers.grace"}},
		{"bad database", "[database]\nurl = \"mysql://x\"\n", []string{"database.url"}},
		{"bad source", "[[scrape.source]]\nname = \"x\"\n", []string{"scrape", "url or file is required"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.in), "run.toml")
			if err == nil {
				t.Fatalf("%q parsed", tc.in)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestConfigOverDefaults(t *testing.T) {
	in := "[schedule]\nrecheck_interval = \"2m\"\n\n[workers]\nprocesses = 2\n\n[rotate]\nenabled = false\n\n" +
		"[[scrape.source]]\nname = \"a\"\nurl = \"http://127.0.0.2:1/a\"\n"
	path := filepath.Join(t.TempDir(), "run.toml")
	if err := os.WriteFile(path, []byte(in), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	def := Default()
	if c.Schedule.RecheckInterval.D() != 2*time.Minute || c.Workers.Processes != 2 || c.Rotate.Enabled ||
		len(c.Scrape.Sources) != 1 || c.Schedule.DeadBackoff != def.Schedule.DeadBackoff || c.Console.Listen != def.Console.Listen {
		t.Fatalf("config %+v: the file's keys over the defaults expected", c)
	}
	if _, err := LoadConfig(filepath.Join(t.TempDir(), "missing.toml")); err == nil || !strings.Contains(err.Error(), "missing.toml") {
		t.Fatalf("a missing file: %v", err)
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add(DefaultConfig())
	f.Add([]byte("[schedule]\ntick = \"1s\"\n"))
	f.Add([]byte("[[scrape.source]]\nurl = \"http://x/\"\n"))
	f.Add([]byte("[workers]\nprocesses = 1e400\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b, "fuzz.toml")
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.toml") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		// A configuration that parses is valid and survives a round trip.
		if err := c.Validate("again"); err != nil {
			t.Fatalf("parsed but invalid: %v", err)
		}
		var buf bytes.Buffer
		if err := toml.NewEncoder(&buf).Encode(c); err != nil {
			return // e.g. a string TOML cannot hold; the parse was still safe
		}
		c2, err := ParseConfig(buf.Bytes(), "again.toml")
		if err != nil {
			t.Fatalf("round trip of %q failed: %v", buf.String(), err)
		}
		if !same(t, c, c2) {
			t.Fatalf("round trip changed the config:\n%+v\n%+v", c, c2)
		}
	})
}

// same reports whether two configurations are equal, as TOML (nil and empty lists are alike).
func same(t *testing.T, a, b Config) bool {
	t.Helper()
	x, err1 := toml.Marshal(a)
	y, err2 := toml.Marshal(b)
	if err1 != nil || err2 != nil {
		t.Fatalf("marshal: %v %v", err1, err2)
	}
	return bytes.Equal(x, y)
}

// TestDocsShowTheDefaults: docs/run.md's configuration reference is --print-config's output.
func TestDocsShowTheDefaults(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "run.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("```toml\n"+string(DefaultConfig())+"```")) {
		t.Fatal("docs/run.md's configuration reference differs from --print-config: paste `proxyline run --print-config` into it")
	}
}
