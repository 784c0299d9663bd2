package proxy

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"
)

// Field is an extra named value written next to a proxy, such as a check result's class or
// latency: a key of the JSON object in JSONL, a column in CSV; Text ignores it. Value is written
// as encoding/json writes it (a string without its quotes in CSV; time.Time as RFC 3339).
type Field struct {
	Key   string
	Value any
}

// baseKeys are the keys and columns Writer always writes, in order; extra fields may not reuse them.
var baseKeys = []string{"url", "scheme", "host", "port", "user", "password"}

// Writer writes proxies in one format. Text is exactly mubeng's list: one String() per line. JSONL
// writes {"url","scheme","host","port"[,"user","password"], extra...} per line, leaving out an
// Unknown scheme and empty credentials. CSV writes a header row on the first Write, with the base
// columns then the extra fields' keys; every later Write must give the same keys in the same order.
// What Writer writes, Read reads back to the same Proxy values.
//
// Output is buffered: call Flush when done, or whenever readers should see what was written. A
// Writer is not safe for concurrent use.
type Writer struct {
	w      *bufio.Writer
	format Format
	csv    *csv.Writer
	keys   []string // CSV: the extra keys of the header; nil before the first Write
	rec    []string // CSV: the record being written
	buf    bytes.Buffer
	enc    *json.Encoder // encodes one JSON value into buf, without HTML escaping
	err    error         // the first error; every later call returns it
}

// NewWriter returns a Writer of format f to w; Auto means Text.
func NewWriter(w io.Writer, f Format) *Writer {
	if f == Auto {
		f = Text
	}
	pw := &Writer{w: bufio.NewWriter(w), format: f}
	pw.enc = json.NewEncoder(&pw.buf)
	pw.enc.SetEscapeHTML(false)
	if f == CSV {
		pw.csv = csv.NewWriter(pw.w)
	}
	return pw
}

// Write writes one proxy with its extra fields.
func (w *Writer) Write(p Proxy, extra ...Field) error {
	if w.err != nil {
		return w.err
	}
	switch w.format {
	case Text:
		_, err := w.w.WriteString(p.String() + "\n")
		w.setErr(err)
	case JSONL:
		w.setErr(w.writeJSON(p, extra))
	case CSV:
		w.setErr(w.writeCSV(p, extra))
	default:
		w.setErr(fmt.Errorf("write proxy list: unknown format %q", w.format))
	}
	return w.err
}

// Flush writes any buffered data to the underlying writer.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	if w.csv != nil {
		w.csv.Flush()
		w.setErr(w.csv.Error())
	}
	if w.err == nil {
		w.setErr(w.w.Flush())
	}
	return w.err
}

func (w *Writer) setErr(err error) {
	if err != nil && w.err == nil {
		w.err = fmt.Errorf("write proxy list: %w", err)
	}
}

// checkKeys rejects extra keys that are empty, repeated, or the same as a base key.
func checkKeys(extra []Field) error {
	for i, f := range extra {
		if f.Key == "" {
			return fmt.Errorf("extra field %d has no key", i)
		}
		for _, k := range baseKeys {
			if f.Key == k {
				return fmt.Errorf("extra field %q is a base field", f.Key)
			}
		}
		for _, g := range extra[:i] {
			if g.Key == f.Key {
				return fmt.Errorf("extra field %q given twice", f.Key)
			}
		}
	}
	return nil
}

func (w *Writer) writeJSON(p Proxy, extra []Field) error {
	if err := checkKeys(extra); err != nil {
		return err
	}
	b := make([]byte, 0, 128)
	add := func(key string, v any) error {
		if len(b) == 0 {
			b = append(b, '{')
		} else {
			b = append(b, ',')
		}
		w.buf.Reset()
		_ = w.enc.Encode(key) // a string always encodes
		b = append(b, bytes.TrimSuffix(w.buf.Bytes(), []byte("\n"))...)
		b = append(b, ':')
		w.buf.Reset()
		if err := w.enc.Encode(v); err != nil {
			return fmt.Errorf("field %q: %w", key, err)
		}
		b = append(b, bytes.TrimSuffix(w.buf.Bytes(), []byte("\n"))...)
		return nil
	}
	_ = add("url", p.String())
	if p.Scheme != Unknown {
		_ = add("scheme", string(p.Scheme))
	}
	_ = add("host", p.Host)
	_ = add("port", int(p.Port))
	if p.User != "" || p.Password != "" {
		_ = add("user", p.User)
		_ = add("password", p.Password)
	}
	for _, f := range extra {
		if err := add(f.Key, f.Value); err != nil {
			return err
		}
	}
	b = append(b, "}\n"...)
	_, err := w.w.Write(b)
	return err
}

func (w *Writer) writeCSV(p Proxy, extra []Field) error {
	if w.keys == nil {
		if err := checkKeys(extra); err != nil {
			return err
		}
		w.keys = make([]string, len(extra))
		for i, f := range extra {
			w.keys[i] = f.Key
		}
		if err := w.csv.Write(append(append([]string(nil), baseKeys...), w.keys...)); err != nil {
			return err
		}
	}
	if len(extra) != len(w.keys) {
		return fmt.Errorf("CSV row has %d extra fields, the header has %d (%v)", len(extra), len(w.keys), w.keys)
	}
	w.rec = append(w.rec[:0], p.String(), string(p.Scheme), p.Host, strconv.Itoa(int(p.Port)), p.User, p.Password)
	for i, f := range extra {
		if f.Key != w.keys[i] {
			return fmt.Errorf("CSV row field %d is %q, the header has %q", i, f.Key, w.keys[i])
		}
		s, err := w.text(f.Value)
		if err != nil {
			return fmt.Errorf("field %q: %w", f.Key, err)
		}
		w.rec = append(w.rec, s)
	}
	return w.csv.Write(w.rec)
}

// text formats a CSV value: strings as they are, time.Time as RFC 3339, nil as "", anything else
// as its JSON text.
func (w *Writer) text(v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case time.Time:
		return v.Format(time.RFC3339Nano), nil
	}
	w.buf.Reset()
	if err := w.enc.Encode(v); err != nil {
		return "", err
	}
	s := string(bytes.TrimSuffix(w.buf.Bytes(), []byte("\n")))
	if len(s) > 0 && s[0] == '"' {
		var u string
		if err := json.Unmarshal([]byte(s), &u); err == nil {
			return u, nil
		}
	}
	return s, nil
}
