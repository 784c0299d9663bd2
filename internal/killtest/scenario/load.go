package scenario

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"

	"gopkg.in/yaml.v3"
)

// FieldError is a problem in a scenario file, located by file, line and field path.
type FieldError struct {
	File  string
	Line  int
	Field string
	Msg   string
}

func (e *FieldError) Error() string {
	file := e.File
	if file == "" {
		file = "<scenario>"
	}
	if e.Field == "" {
		return fmt.Sprintf("%s:%d: %s", file, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s: %s", file, e.Line, e.Field, e.Msg)
}

// Builtins are the values of the built-in variables for one run.
type Builtins struct {
	TMP      string // per-run temp dir
	Seed     int64
	Run      string // run id
	TestData string // optional directory of test fixtures
	// Ports are free loopback TCP ports picked for this run: ${PORT1}, ${PORT2}, ...
	Ports []int
}

// NumPorts is how many ${PORTn} variables a run gets.
const NumPorts = 4

// LoadFile reads and validates a scenario file.
func LoadFile(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read scenario %s: %w", path, err)
	}
	return Parse(path, data)
}

// Parse decodes and validates a scenario. name is used in errors (a file path, or "builtin:x").
// All problems found are returned joined, each naming file:line:field.
func Parse(name string, data []byte) (*Scenario, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &FieldError{File: name, Line: 1, Msg: "empty scenario"}
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &FieldError{File: name, Line: extra.Line, Msg: "more than one YAML document"}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, &FieldError{File: name, Line: 1, Msg: "not a YAML mapping"}
	}
	root := doc.Content[0]
	w := &walker{lines: map[string]int{}, file: name}
	w.walk(root, reflect.TypeOf(Scenario{}), "")
	if len(w.errs) > 0 {
		return nil, errors.Join(w.errs...)
	}
	s := &Scenario{File: name, lines: w.lines, root: root}
	// Decode once with placeholder built-ins so types and semantics are checked now, not mid-run.
	inst, err := s.Instantiate(Builtins{TMP: "/nonexistent-killtest-tmp", Seed: 1, Run: "validate", Ports: []int{40001, 40002, 40003, 40004}})
	if err != nil {
		return nil, err
	}
	if err := inst.Validate(); err != nil {
		return nil, err
	}
	*s = *inst
	s.root = root
	return s, nil
}

// Instantiate returns a copy of the scenario with every ${VAR} expanded for one run. Scenario vars
// may use built-ins and earlier-defined... any built-in; the process environment is the last
// fallback (so ${HOME} works).
func (s *Scenario) Instantiate(b Builtins) (*Scenario, error) {
	if s.root == nil {
		return nil, fmt.Errorf("scenario %s: not parsed from YAML", s.Name)
	}
	dir := ""
	if s.File != "" && !isBuiltin(s.File) {
		if abs, err := filepath.Abs(filepath.Dir(s.File)); err == nil {
			dir = abs
		}
	}
	builtin := map[string]string{
		"TMP": b.TMP, "SEED": strconv.FormatInt(b.Seed, 10), "RUN": b.Run,
		"SCENARIO_DIR": dir, "TESTDATA": b.TestData,
	}
	for i, p := range b.Ports {
		builtin["PORT"+strconv.Itoa(i+1)] = strconv.Itoa(p)
	}
	// Vars first, expanded with built-ins and the environment only.
	raw := map[string]string{}
	root := cloneNode(s.root)
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value != "vars" {
			continue
		}
		vn := root.Content[i+1]
		if err := expandNode(vn, func(k string) (string, bool) {
			if v, ok := builtin[k]; ok {
				return v, true
			}
			return os.LookupEnv(k)
		}, s.File); err != nil {
			return nil, err
		}
		for j := 0; j+1 < len(vn.Content); j += 2 {
			raw[vn.Content[j].Value] = vn.Content[j+1].Value
		}
	}
	lookup := func(k string) (string, bool) {
		if v, ok := builtin[k]; ok {
			return v, true
		}
		if v, ok := raw[k]; ok {
			return v, true
		}
		return os.LookupEnv(k)
	}
	if err := expandNode(root, lookup, s.File); err != nil {
		return nil, err
	}
	out := &Scenario{}
	if err := root.Decode(out); err != nil {
		return nil, fmt.Errorf("%s: decode after expanding variables: %w", s.File, err)
	}
	out.File = s.File
	out.lines = s.lines
	out.root = s.root
	return out, nil
}

func isBuiltin(name string) bool { return len(name) > 8 && name[:8] == "builtin:" }

// Line returns the line of a field path ("components[0].name"), or the nearest parent's, or 0.
func (s *Scenario) Line(path string) int {
	for p := path; p != ""; p = parent(p) {
		if l, ok := s.lines[p]; ok {
			return l
		}
	}
	return 0
}

func parent(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '.' || p[i] == '[' {
			return p[:i]
		}
	}
	return ""
}

// errAt returns a FieldError for path.
func (s *Scenario) errAt(path, format string, args ...any) error {
	return &FieldError{File: s.File, Line: s.Line(path), Field: path, Msg: fmt.Sprintf(format, args...)}
}
