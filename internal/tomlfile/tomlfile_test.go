package tomlfile

import (
	"strings"
	"testing"
)

type conf struct {
	Name    string `toml:"name"`
	Section struct {
		Every string `toml:"every"`
		N     int    `toml:"n"`
	} `toml:"section"`
}

func TestDecodeErrorsNameThePlace(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"name = \"x\"\n[section]\nevry = \"1s\"\n", `c.toml:3:1: unknown key "section.evry"`},
		{"name = \"x\"\n[section]\nn = \"three\"\n", `c.toml:3:5: key "section.n": `},
		{"name = \"x\"\n[section\n", "c.toml:2:"},
	} {
		var c conf
		err := Decode([]byte(tc.in), "c.toml", &c)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Decode(%q) = %v, want an error with %q", tc.in, err, tc.want)
		}
	}
}

func TestDecodeOverDefaults(t *testing.T) {
	var c conf
	if err := Decode([]byte("name = \"d\"\n[section]\nn = 2\nevery = \"5s\"\n"), "defaults.toml", &c); err != nil {
		t.Fatal(err)
	}
	if err := Decode([]byte("[section]\nn = 3\n"), "user.toml", &c); err != nil {
		t.Fatal(err)
	}
	if c.Name != "d" || c.Section.N != 3 || c.Section.Every != "5s" {
		t.Fatalf("decoded %+v", c)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte("name = \"x\"\n[section]\nn = 1\n"))
	f.Add([]byte("[section\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var c conf
		_ = Decode(b, "f.toml", &c) // must not panic
	})
}
