package scenario

import (
	"fmt"
	"reflect"
	"regexp"
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
		if n.Kind == yaml.ScalarNode {
			if _, ok := t.FieldByName("Enabled"); ok {
				var b bool
				if err := n.Decode(&b); err != nil {
					w.fail(n.Line, path, "want true, false or a mapping")
					return
				}
				// Normalise `check: false` to `check: {enabled: false}`.
				*n = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: n.Line, Column: n.Column, Content: []*yaml.Node{
					{Kind: yaml.ScalarNode, Tag: "!!str", Value: "enabled", Line: n.Line},
					{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(b), Line: n.Line},
				}}
				return
			}
		}
		if n.Kind != yaml.MappingNode {
			w.fail(n.Line, path, "want a mapping, got a %s", kindName(n.Kind))
			return
		}
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
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			w.fail(n.Line, path, "want a list, got a %s", kindName(n.Kind))
			return
		}
		for i, c := range n.Content {
			w.walk(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	case reflect.Map:
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
	default:
		if n.Kind != yaml.ScalarNode {
			w.fail(n.Line, path, "want a %s, got a %s", t.Kind(), kindName(n.Kind))
			return
		}
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			w.fail(n.Line, path, "want a %s, got %q", t.Kind(), n.Value)
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

var varRef = regexp.MustCompile(`\$\{([^}]*)\}`)

// expandNode replaces ${NAME} in every scalar of n using lookup; unknown names are errors.
func expandNode(n *yaml.Node, lookup func(string) (string, bool), file string) error {
	var errs []error
	var rec func(n *yaml.Node)
	rec = func(n *yaml.Node) {
		if n.Kind == yaml.ScalarNode && strings.Contains(n.Value, "${") {
			n.Value = varRef.ReplaceAllStringFunc(n.Value, func(m string) string {
				name := m[2 : len(m)-1]
				v, ok := lookup(name)
				if !ok {
					errs = append(errs, &FieldError{File: file, Line: n.Line, Field: "${" + name + "}", Msg: "unknown variable"})
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
		for _, c := range n.Content {
			rec(c)
		}
	}
	rec(n)
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
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
