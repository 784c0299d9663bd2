package supervise

import (
	"strings"
	"testing"
)

func TestParseLayers(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		want Layers
		err  string
	}{
		{in: "", want: Layers{}},
		{in: "cgroup, pid_namespace", want: Layers{Cgroup: true, PIDNamespace: true}},
		{in: "all", want: Layers{true, true, true, true, true, true}},
		{in: "pdeathsig,,cookie", want: Layers{Pdeathsig: true, Cookie: true}},
		{in: "pidns", err: `unknown supervision layer "pidns" (known: process_group, pdeathsig, cgroup, pid_namespace, subreaper, cookie, all)`},
	} {
		got, err := ParseLayers(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseLayers(%q) error %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseLayers(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
		// Names is the inverse of ParseLayers.
		if back, err := ParseLayers(strings.Join(got.Names(), ",")); err != nil || back != got {
			t.Errorf("round trip of %q: %+v, %v", tt.in, back, err)
		}
	}
}

func TestSweepNameMatches(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, idOrDir string
		want          bool
	}{
		{"", "anything-at-all", true},
		{"worker", "worker-a1b2c3-17", true},
		{"worker", "worker-a1b2c3.4242.99887", true},
		{"worker", "check-a1b2c3-17", false},
		{"worker", "worker-x-a1b2c3-17", false},  // a supervisor named "worker-x"
		{"worker", "worker-ab-a1b2c3-17", false}, // "worker-ab", whose name looks like hex
		{"worker", "worker-17", false},           // no instance part
		{"worker-x", "worker-x-a1b2c3-1", true},
	} {
		if got := (SweepConfig{Name: tt.name}).nameMatches(tt.idOrDir); got != tt.want {
			t.Errorf("Name %q matches %q = %v, want %v", tt.name, tt.idOrDir, got, tt.want)
		}
	}
}

// FuzzParseLayers: any input either fails with the list of known names or gives layers whose
// Names parse back to the same layers.
func FuzzParseLayers(f *testing.F) {
	for _, s := range []string{"", "all", "cgroup,pid_namespace", " pdeathsig , cookie ", "pidns", ",,", "all,cgroup"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLayers(s)
		if err != nil {
			if !strings.Contains(err.Error(), "known: process_group") {
				t.Fatalf("ParseLayers(%q) error %q does not list the known layers", s, err)
			}
			return
		}
		back, err := ParseLayers(strings.Join(l.Names(), ","))
		if err != nil || back != l {
			t.Fatalf("ParseLayers(%q) = %+v; round trip %+v, %v", s, l, back, err)
		}
	})
}
