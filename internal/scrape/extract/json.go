package extract

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/proxyline/proxyline/proxy"
)

// maxDepth bounds how deep JSON is walked.
const maxDepth = 64

// JSON finds the candidates in a JSON document, or in a stream of documents (JSON lines).
// With Options.JSONPath ("data.proxies") only the values at that path are read; arrays met on
// the way are walked element by element. A value is read as: a string, with Text; an object with
// a url or proxy key, or host (ip) and port keys, as one proxy from its fields (the keys of
// docs/formats.md, any case; a "protocols" array gives one candidate per protocol); any other
// object or array, by walking its values. Malformed JSON is an error naming the byte offset; what
// was found before it is emitted.
func JSON(b []byte, o Options, emit func(proxy.Proxy)) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var e errs
	var path []string
	if o.JSONPath != "" {
		path = strings.Split(o.JSONPath, ".")
	}
	matched := false
	for {
		var v any
		err := d.Decode(&v)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			e.add(jsonError(err, d.InputOffset()))
			break
		}
		for _, at := range follow(v, path) {
			matched = true
			walk(at, o, emit, &e, 0)
		}
	}
	if !matched && o.JSONPath != "" && len(e.list) == 0 {
		e.add(fmt.Errorf("json: nothing at path %q", o.JSONPath))
	}
	return e.err()
}

func jsonError(err error, offset int64) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		offset = se.Offset
	}
	return fmt.Errorf("malformed JSON at byte %d: %w", offset, err)
}

// follow returns the values at path in v, walking arrays on the way.
func follow(v any, path []string) []any {
	if len(path) == 0 {
		return []any{v}
	}
	switch x := v.(type) {
	case []any:
		var out []any
		for _, el := range x {
			out = append(out, follow(el, path)...)
		}
		return out
	case map[string]any:
		if el, ok := x[path[0]]; ok {
			return follow(el, path[1:])
		}
		for k, el := range x {
			if strings.EqualFold(k, path[0]) {
				return follow(el, path[1:])
			}
		}
	}
	return nil
}

func walk(v any, o Options, emit func(proxy.Proxy), e *errs, depth int) {
	if depth > maxDepth {
		return
	}
	switch x := v.(type) {
	case string:
		if strings.IndexByte(x, ':') >= 0 {
			if err := Text([]byte(x), o, emit); err != nil {
				e.add(err)
			}
		}
	case []any:
		for _, el := range x {
			walk(el, o, emit, e, depth+1)
		}
	case map[string]any:
		if fromObject(x, o, emit, e) {
			return
		}
		for _, el := range x {
			walk(el, o, emit, e, depth+1)
		}
	}
}

// fromObject reads an object that names a proxy; false if it names none.
func fromObject(m map[string]any, o Options, emit func(proxy.Proxy), e *errs) bool {
	f := map[string]any{}
	for k, v := range m {
		if name, ok := columns[strings.ToLower(k)]; ok {
			if _, dup := f[name]; !dup || k == strings.ToLower(k) {
				f[name] = v
			}
		}
	}
	if u, ok := f["url"].(string); ok && u != "" {
		if err := Text([]byte(u), o, emit); err != nil {
			e.add(err)
		}
		return true
	}
	host, port := scalar(f["host"]), scalar(f["port"])
	if host == "" || port == "" {
		return false
	}
	schemes := []string{schemeOf(scalar(f["scheme"]))}
	if ps, ok := m["protocols"].([]any); ok && len(ps) > 0 {
		schemes = schemes[:0]
		for _, s := range ps {
			schemes = append(schemes, schemeOf(scalar(s)))
		}
	}
	for _, s := range schemes {
		p, err := proxy.FromFields(s, host, port, scalar(f["user"]), scalar(f["password"]))
		if err == nil {
			emitChecked(p, o, emit)
		}
	}
	return true
}

// scalar is a JSON string or number as text; anything else is "".
func scalar(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	}
	return ""
}
