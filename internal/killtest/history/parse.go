package history

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// maxLine bounds one input line (a JSON result with a large output).
const maxLine = 16 << 20

func scanner(r io.Reader) *bufio.Scanner {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	return sc
}

// ReadIDs reads one id per line; blank lines and lines starting with '#' are skipped, spaces
// around an id are trimmed. name is used in errors and Record.Where.
func ReadIDs(r io.Reader, name string) ([]Record, error) {
	var out []Record
	sc := scanner(r)
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		out = append(out, Record{ID: s, Where: fmt.Sprintf("%s:%d", name, line)})
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("read ids %s: %w", name, err)
	}
	return out, nil
}

// ReadJSONL reads JSON lines; idField and outField are dot paths (default "id" and "output").
// An id may be a string or a number. The output, when present, is kept as its JSON text unless
// it is a string. Errors name the line.
func ReadJSONL(r io.Reader, name, idField, outField string) ([]Record, error) {
	if idField == "" {
		idField = "id"
	}
	if outField == "" {
		outField = "output"
	}
	var out []Record
	sc := scanner(r)
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		where := fmt.Sprintf("%s:%d", name, line)
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return out, fmt.Errorf("%s: not JSON: %w", where, err)
		}
		if dec.More() {
			return out, fmt.Errorf("%s: more than one JSON value on the line", where)
		}
		idv, ok := FieldPath(v, idField)
		if !ok {
			return out, fmt.Errorf("%s: no field %q", where, idField)
		}
		id, ok := scalarString(idv)
		if !ok || id == "" {
			return out, fmt.Errorf("%s: field %q is not a string or number", where, idField)
		}
		rec := Record{ID: id, Where: where}
		if ov, ok := FieldPath(v, outField); ok {
			rec.HasOutput = true
			if s, ok := ov.(string); ok {
				rec.Output = s
			} else {
				raw, _ := json.Marshal(ov)
				rec.Output = string(raw)
			}
		}
		out = append(out, rec)
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("read %s: %w", name, err)
	}
	return out, nil
}

// ReadChecksums reads "id checksum" lines (whitespace separated; '#' comments). Errors name the line.
func ReadChecksums(r io.Reader, name string) (map[string]string, error) {
	out := map[string]string{}
	sc := scanner(r)
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		f := strings.Fields(s)
		if len(f) != 2 {
			return out, fmt.Errorf("%s:%d: want \"id checksum\", got %d fields", name, line, len(f))
		}
		if prev, ok := out[f[0]]; ok && prev != f[1] {
			return out, fmt.Errorf("%s:%d: id %q has two different checksums", name, line, f[0])
		}
		out[f[0]] = f[1]
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("read checksums %s: %w", name, err)
	}
	return out, nil
}

// FieldPath walks a decoded JSON value by a dot path: object keys, and decimal indexes into
// arrays ("jobs.0.count"). An empty path is the value itself.
func FieldPath(v any, path string) (any, bool) {
	if path == "" {
		return v, true
	}
	for _, part := range strings.Split(path, ".") {
		switch t := v.(type) {
		case map[string]any:
			nv, ok := t[part]
			if !ok {
				return nil, false
			}
			v = nv
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(t) {
				return nil, false
			}
			v = t[i]
		default:
			return nil, false
		}
	}
	return v, true
}

func scalarString(v any) (string, bool) {
	switch t := v.(type) {
	case string:
		return t, true
	case json.Number:
		return t.String(), true
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(t), true
	}
	return "", false
}

// IDs returns the ids of records, in order.
func IDs(recs []Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return out
}
