package scenario

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// The YAML is checked by walking the node tree against the Go types before decoding, because
// yaml.v3's own KnownFields errors name a line but not the field path, and semantic errors found
// after decoding would have no line at all. The walker records the line of every field path.

var unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()

// walker checks a node against a type, normalises check toggles and records field lines.
type walker struct {
	lines map[string]int
	errs  []error
	file  string
}

func (w *walker) fail(line int, path, format string, args ...any) {
	w.errs = append(w.errs, &FieldError{File: w.file, Line: line, Field: path, Msg: fmt.Sprintf(format, args...)})
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		return "scalar"
	case yaml.AliasNode:
		return "alias"
	}
	return "document"
}

// walk checks n (at path) against t.
func (w *walker) walk(n *yaml.Node, t reflect.Type, path string) {
	w.lines[path] = n.Line
	if n.Kind == yaml.AliasNode {
		w.fail(n.Line, path, "aliases are not supported")
		return
	}
	if n.Kind == yaml.ScalarNode && (n.Tag == "!!null" || strings.Contains(n.Value, "${")) {
		return // types of values with variables are checked once expanded
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			w.fail(n.Line, path, "%v", err)
		}
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		w.walk(n, t.Elem(), path)
	case reflect.Struct:
		w.walkStruct(n, t, path)
	case reflect.Slice:
		w.walkSlice(n, t, path)
	case reflect.Map:
		w.walkMap(n, t, path)
	default:
		w.walkScalar(n, t, path)
	}
}

// walkStruct checks a mapping against a struct's yaml fields; a check toggle (a struct with an
// Enabled field) also accepts a bare boolean, and gets "enabled: true" when it does not say.
func (w *walker) walkStruct(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind == yaml.ScalarNode {
		if _, ok := t.FieldByName("Enabled"); ok {
			w.normaliseToggle(n, path)
			return
		}
	}
	if n.Kind != yaml.MappingNode {
		w.fail(n.Line, path, "want a mapping, got a %s", kindName(n.Kind))
		return
	}
	fields, names := yamlFields(t)
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		sub := join(path, k.Value)
		f, ok := fields[k.Value]
		if !ok {
			w.fail(k.Line, sub, "unknown field (known: %s)", strings.Join(names, ", "))
			continue
		}
		if seen[k.Value] {
			w.fail(k.Line, sub, "field given twice")
		}
		seen[k.Value] = true
		w.lines[sub] = k.Line
		w.walk(v, f.Type, sub)
	}
	if _, ok := fields["enabled"]; ok && !seen["enabled"] {
		n.Content = append(n.Content,
			&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "enabled", Line: n.Line},
			&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "true", Line: n.Line})
	}
}

// normaliseToggle rewrites `check: false` to `check: {enabled: false}` in place.
func (w *walker) normaliseToggle(n *yaml.Node, path string) {
	var b bool
	if err := n.Decode(&b); err != nil {
		w.fail(n.Line, path, "want true, false or a mapping")
		return
	}
	*n = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: n.Line, Column: n.Column, Content: []*yaml.Node{
		{Kind: yaml.ScalarNode, Tag: "!!str", Value: "enabled", Line: n.Line},
		{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(b), Line: n.Line},
	}}
}

// yamlFields returns a struct's exported fields by yaml name, and the names in field order.
func yamlFields(t reflect.Type) (map[string]reflect.StructField, []string) {
	fields := map[string]reflect.StructField{}
	var names []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" || !f.IsExported() {
			continue
		}
		fields[tag] = f
		names = append(names, tag)
	}
	return fields, names
}

// walkSlice checks a list, element by element.
func (w *walker) walkSlice(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind != yaml.SequenceNode {
		w.fail(n.Line, path, "want a list, got a %s", kindName(n.Kind))
		return
	}
	for i, c := range n.Content {
		w.walk(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
	}
}

// walkMap checks a mapping with free keys, value by value.
func (w *walker) walkMap(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind != yaml.MappingNode {
		w.fail(n.Line, path, "want a mapping, got a %s", kindName(n.Kind))
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		sub := join(path, k.Value)
		w.lines[sub] = k.Line
		w.walk(v, t.Elem(), sub)
	}
}

// walkScalar checks that a scalar decodes into t.
func (w *walker) walkScalar(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind != yaml.ScalarNode {
		w.fail(n.Line, path, "want a %s, got a %s", t.Kind(), kindName(n.Kind))
		return
	}
	if err := n.Decode(reflect.New(t).Interface()); err != nil {
		w.fail(n.Line, path, "want a %s, got %q", t.Kind(), n.Value)
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

var varRef = regexp.MustCompile(`\$\{([^}]*)\}`)

// expandNode replaces ${NAME} in every scalar of n (at field path path) using lookup; every
// unknown name is an error naming the field it is in.
func expandNode(n *yaml.Node, lookup func(string) (string, bool), file, path string) error {
	var errs []error
	var rec func(n *yaml.Node, path string)
	rec = func(n *yaml.Node, path string) {
		if n.Kind == yaml.ScalarNode && strings.Contains(n.Value, "${") {
			n.Value = varRef.ReplaceAllStringFunc(n.Value, func(m string) string {
				name := m[2 : len(m)-1]
				v, ok := lookup(name)
				if !ok {
					errs = append(errs, &FieldError{File: file, Line: n.Line, Field: path, Msg: "unknown variable ${" + name + "} (not a built-in, not in vars, not in the environment)"})
				}
				return v
			})
			// An expanded scalar resolves its own type from its value, quoted or not, so
			// `ports: ["${PORT1}"]` is a number; string fields still get the text as is.
			if n.Value != "" {
				n.Tag = ""
				n.Style &^= yaml.DoubleQuotedStyle | yaml.SingleQuotedStyle
			}
		}
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				rec(n.Content[i], path)
				rec(n.Content[i+1], join(path, n.Content[i].Value))
			}
		default:
			for i, c := range n.Content {
				if n.Kind == yaml.SequenceNode {
					rec(c, fmt.Sprintf("%s[%d]", path, i))
				} else {
					rec(c, path)
				}
			}
		}
	}
	rec(n, path)
	return errors.Join(errs...)
}

// envRefs lists the ${NAME}s of the document that are neither built-ins nor vars: the
// variables the scenario takes from killtest's environment, sorted.
func envRefs(root *yaml.Node) []string {
	vars := map[string]bool{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "vars" {
			vn := root.Content[i+1]
			for j := 0; j+1 < len(vn.Content); j += 2 {
				vars[vn.Content[j].Value] = true
			}
		}
	}
	seen := map[string]bool{}
	var rec func(n *yaml.Node, inVars bool)
	rec = func(n *yaml.Node, inVars bool) {
		if n.Kind == yaml.ScalarNode {
			for _, m := range varRef.FindAllStringSubmatch(n.Value, -1) {
				// vars values see built-ins and the environment only, not other vars.
				if name := m[1]; !IsBuiltinVar(name) && (inVars || !vars[name]) {
					seen[name] = true
				}
			}
		}
		for i, c := range n.Content {
			rec(c, inVars || (n == root && i%2 == 1 && root.Content[i-1].Value == "vars"))
		}
	}
	rec(root, false)
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// IsBuiltinVar reports whether name is a built-in variable (TMP, SEED, RUN, SCENARIO_DIR,
// TESTDATA, PORT1..PORT4).
func IsBuiltinVar(name string) bool {
	switch name {
	case "TMP", "SEED", "RUN", "SCENARIO_DIR", "TESTDATA":
		return true
	}
	if n, ok := strings.CutPrefix(name, "PORT"); ok {
		i, err := strconv.Atoi(n)
		return err == nil && i >= 1 && i <= NumPorts && n == strconv.Itoa(i)
	}
	return false
}

func cloneNode(n *yaml.Node) *yaml.Node {
	if n == nil {
		return nil
	}
	c := *n
	c.Content = make([]*yaml.Node, len(n.Content))
	for i, k := range n.Content {
		c.Content[i] = cloneNode(k)
	}
	return &c
}
