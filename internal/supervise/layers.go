package supervise

import (
	"fmt"
	"strings"
)

// layerFields pairs each layer's name (its JSON name, as status and logs show it) with its field.
func (l *Layers) fields() []struct {
	name string
	on   *bool
} {
	return []struct {
		name string
		on   *bool
	}{
		{"process_group", &l.ProcessGroup}, {"pdeathsig", &l.Pdeathsig}, {"cgroup", &l.Cgroup},
		{"pid_namespace", &l.PIDNamespace}, {"subreaper", &l.Subreaper}, {"cookie", &l.Cookie},
	}
}

// Names lists the layers that are on, by name, in order from the outermost.
func (l Layers) Names() []string {
	var out []string
	for _, f := range l.fields() {
		if *f.on {
			out = append(out, f.name)
		}
	}
	return out
}

// ParseLayers parses a comma-separated list of layer names ("cgroup,pid_namespace"; "all"; ""
// is none), as Config.Disable is given on command lines. An unknown name is an error that lists
// the known ones.
func ParseLayers(list string) (Layers, error) {
	var l Layers
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		found := false
		for _, f := range l.fields() {
			if name == f.name || name == "all" {
				*f.on, found = true, true
			}
		}
		if !found {
			return Layers{}, fmt.Errorf("unknown supervision layer %q (known: %s, all)", name,
				strings.Join(Layers{true, true, true, true, true, true}.Names(), ", "))
		}
	}
	return l, nil
}
