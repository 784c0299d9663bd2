package scenario

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

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
		return nil, syntaxError(name, data, err, reflect.TypeOf(Scenario{}))
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
	s.env = envRefs(root)
	// Decode once with placeholder built-ins so types and semantics are checked now, not mid-run.
	inst, err := s.Instantiate(Builtins{TMP: "/nonexistent-killtest-tmp", Seed: 1, Run: "validate", Ports: []int{40001, 40002, 40003, 40004}})
	if err != nil {
		return nil, err
	}
	if err := inst.Validate(); err != nil {
		return nil, err
	}
	env := s.env
	*s = *inst
	s.root = root
	s.env = env
	return s, nil
}

// Instantiate returns a copy of the scenario with every ${VAR} expanded for one run. Scenario vars
// may use built-ins and earlier-defined... any built-in; the process environment is the last
// fallback (so ${HOME} works).
func (s *Scenario) Instantiate(b Builtins) (*Scenario, error) {
	if s.root == nil {
		return nil, fmt.Errorf("scenario %s: not parsed from YAML", s.Name)
	}
	builtin := s.builtinValues(b)
	root := cloneNode(s.root)
	vars, err := expandVars(root, builtin, s.File)
	if err != nil {
		return nil, err
	}
	lookup := func(k string) (string, bool) {
		if v, ok := builtin[k]; ok {
			return v, true
		}
		if v, ok := vars[k]; ok {
			return v, true
		}
		return os.LookupEnv(k)
	}
	if err := expandNode(root, lookup, s.File, ""); err != nil {
		return nil, err
	}
	// Values with variables were not type-checked before expansion: check them now, so a var
	// that expands to a bad value is reported at its field, not as a decoder message.
	w := &walker{lines: map[string]int{}, file: s.File}
	w.walk(root, reflect.TypeOf(Scenario{}), "")
	if len(w.errs) > 0 {
		return nil, errors.Join(w.errs...)
	}
	out := &Scenario{}
	if err := root.Decode(out); err != nil {
		return nil, fmt.Errorf("%s: decode after expanding variables: %w", s.File, err)
	}
	out.File = s.File
	out.lines = s.lines
	out.root = s.root
	out.env = s.env
	return out, nil
}

// builtinValues are the values of the built-in variables for one run.
func (s *Scenario) builtinValues(b Builtins) map[string]string {
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
	for i := range NumPorts {
		builtin["PORT"+strconv.Itoa(i+1)] = ""
		if i < len(b.Ports) {
			builtin["PORT"+strconv.Itoa(i+1)] = strconv.Itoa(b.Ports[i])
		}
	}
	return builtin
}

// expandVars expands the document's vars in place, with the built-ins and the environment only
// (not other vars), and returns their values.
func expandVars(root *yaml.Node, builtin map[string]string, file string) (map[string]string, error) {
	vars := map[string]string{}
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
		}, file, "vars"); err != nil {
			return nil, err
		}
		for j := 0; j+1 < len(vn.Content); j += 2 {
			vars[vn.Content[j].Value] = vn.Content[j+1].Value
		}
	}
	return vars, nil
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

// Environment lists the variables the scenario takes from killtest's environment (its ${NAME}s
// that are neither built-ins nor vars), sorted: a report's reproduce line must set them.
func (s *Scenario) Environment() []string { return slices.Clone(s.env) }

// maxSyntaxSearch bounds the documents whose syntax errors are located by parsing prefixes
// (about 15 parses of up to the whole document).
const maxSyntaxSearch = 10_000

// syntaxError turns a YAML syntax error into a FieldError on the line of the problem. yaml.v3
// reports the line of its parser's context mark when there is one, that is where the enclosing
// block started ("while parsing a block mapping at ..."), and the problem mark (where the
// parser found the problem) only otherwise; the marks themselves are not exported. So the line
// is found by parsing prefixes of the document: the shortest prefix that fails with the same
// message ends on the line where the parser met the problem. A prefix ending before that line
// parses, or fails otherwise (cut inside a flow collection, say), so the search is a binary one.
func syntaxError(name string, data []byte, err error, t reflect.Type) error {
	msg := yamlMessage(err)
	lines := bytes.SplitAfter(data, []byte("\n"))
	same := func(k int) bool {
		perr := parsePrefix(bytes.Join(lines[:k], nil))
		return perr != nil && yamlMessage(perr) == msg
	}
	line := 0
	if n := len(lines); n <= maxSyntaxSearch && same(n) {
		lo, hi := 1, n // same(hi) holds
		for lo < hi {
			if mid := (lo + hi) / 2; same(mid) {
				hi = mid
			} else {
				lo = mid + 1
			}
		}
		line = lo
	}
	if line == 0 {
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
			line, _ = strconv.Atoi(m[1])
		}
		return &FieldError{File: name, Line: max(line, 1), Msg: "YAML syntax: " + msg}
	}
	if after := lastField(lines[:line-1], t); after != "" {
		msg += " (after " + after + ")"
	}
	return &FieldError{File: name, Line: line, Msg: "YAML syntax: " + msg}
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// yamlMessage is a yaml.v3 error's message without its "yaml: line N: " prefix.
func yamlMessage(err error) string {
	s := strings.TrimPrefix(err.Error(), "yaml: ")
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		s = strings.TrimPrefix(err.Error(), m[0])
	}
	return s
}

func parsePrefix(b []byte) error {
	var n yaml.Node
	err := yaml.NewDecoder(bytes.NewReader(b)).Decode(&n)
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// lastField returns the field path on the last line of a document prefix that parses, "" if
// none: where the reader should look just before the bad line.
func lastField(lines [][]byte, t reflect.Type) string {
	var doc yaml.Node
	if err := yaml.Unmarshal(bytes.Join(lines, nil), &doc); err != nil || len(doc.Content) != 1 {
		return ""
	}
	w := &walker{lines: map[string]int{}}
	w.walk(doc.Content[0], t, "")
	best, bestLine := "", 0
	for p, l := range w.lines {
		if p != "" && (l > bestLine || (l == bestLine && len(p) > len(best))) {
			best, bestLine = p, l
		}
	}
	return best
}
