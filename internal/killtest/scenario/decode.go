package scenario

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"

	"gopkg.in/yaml.v3"
)

// Lines maps a field path ("processes[1].fds.window") to its line in a decoded file.
type Lines map[string]int

// Line returns the line of a field path, or of its nearest parent that has one, or 0.
func (l Lines) Line(path string) int {
	for p := path; p != ""; p = parent(p) {
		if n, ok := l[p]; ok {
			return n
		}
	}
	return 0
}

// Decode decodes one YAML document into out (a pointer to a struct) by the rules of scenario
// files, for other killtest files (killtest watch's) that must read the same way: unknown
// fields, fields given twice, values of the wrong type, aliases and YAML syntax errors are
// FieldErrors naming file:line: field; a struct with an Enabled field may be written `false`;
// ${NAME} is replaced by lookup(NAME) (an unknown name is an error at its field), and a value
// with a variable is type-checked once expanded. It returns the line of every field path, for
// the caller's own semantic errors (see Lines.Line). All problems found are returned joined.
func Decode(file string, data []byte, out any, lookup func(string) (string, bool)) (Lines, error) {
	t := reflect.TypeOf(out)
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		panic("scenario.Decode: out must be a pointer to a struct") // a programmer's mistake
	}
	t = t.Elem()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &FieldError{File: file, Line: 1, Msg: "empty file"}
		}
		return nil, syntaxError(file, data, err, t)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &FieldError{File: file, Line: extra.Line, Msg: "more than one YAML document"}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, &FieldError{File: file, Line: 1, Msg: "not a YAML mapping"}
	}
	root := doc.Content[0]
	w := &walker{lines: map[string]int{}, file: file}
	w.walk(root, t, "")
	if len(w.errs) > 0 {
		return nil, errors.Join(w.errs...)
	}
	if lookup == nil {
		lookup = os.LookupEnv
	}
	if err := expandNode(root, lookup, file, ""); err != nil {
		return nil, err
	}
	// Walk again: values with variables are type-checked now that they are expanded.
	w = &walker{lines: map[string]int{}, file: file}
	w.walk(root, t, "")
	if len(w.errs) > 0 {
		return nil, errors.Join(w.errs...)
	}
	if err := root.Decode(out); err != nil {
		return nil, &FieldError{File: file, Line: root.Line, Msg: fmt.Sprintf("decode: %v", err)}
	}
	return Lines(w.lines), nil
}
