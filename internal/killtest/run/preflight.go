package run

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"mvdan.cc/sh/v3/syntax"

	"github.com/proxyline/proxyline/internal/killtest/scenario"
)

// preflightTMP stands for ${TMP} in Preflight: paths under it exist only during a run.
const preflightTMP = "${TMP}"

// Preflight checks, without starting anything, what a run of sc would find missing: programs in
// `needs`, the programs of every component, setup and workload step and command probe (for a
// `sh` line, the programs it calls by name), looked up on the PATH a run uses (Options.Bin
// first); the scripts given to interpreters (`[sh, x.sh]`, `[python3, x.py]`); and working
// directories. Paths under ${TMP} are made by the run and not checked. Every problem is a
// scenario.FieldError naming file:line: field. sc is a parsed scenario (scenario.Parse).
func Preflight(sc *scenario.Scenario, opts Options) []error {
	inst, err := sc.Instantiate(scenario.Builtins{TMP: preflightTMP, Seed: 1, Run: "preflight", TestData: opts.TestData, Ports: []int{1, 2, 3, 4}})
	if err != nil {
		return []error{err}
	}
	pathEnv := os.Getenv("PATH")
	if opts.Bin != "" {
		abs, err := filepath.Abs(opts.Bin)
		if err != nil {
			return []error{fmt.Errorf("--bin %s: %w", opts.Bin, err)}
		}
		pathEnv = abs + string(os.PathListSeparator) + pathEnv
	}
	pf := &preflight{sc: inst, pathEnv: pathEnv}
	for i, n := range inst.Needs {
		pf.program(fmt.Sprintf("needs[%d]", i), n)
	}
	for i, c := range inst.Components {
		pf.command(fmt.Sprintf("components[%d]", i), c.Command, c.Sh, c.Dir)
	}
	for i, st := range inst.Setup {
		pf.command(fmt.Sprintf("setup[%d]", i), st.Command, st.Sh, st.Dir)
	}
	for i, st := range inst.Workload.Steps {
		pf.command(fmt.Sprintf("workload.steps[%d]", i), st.Command, st.Sh, st.Dir)
	}
	names := make([]string, 0, len(inst.Probes))
	for name := range inst.Probes {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if c := inst.Probes[name].Command; c != nil {
			pf.command("probes."+name+".command", c.Command, c.Sh, "")
		}
	}
	return pf.errs
}

type preflight struct {
	sc      *scenario.Scenario
	pathEnv string
	errs    []error
}

func (pf *preflight) fail(field, format string, args ...any) {
	pf.errs = append(pf.errs, &scenario.FieldError{File: pf.sc.File, Line: pf.sc.Line(field), Field: field, Msg: fmt.Sprintf(format, args...)})
}

func atRunTime(p string) bool { return strings.Contains(p, preflightTMP) }

// program reports a program that a run would not find.
func (pf *preflight) program(field, name string) {
	if atRunTime(name) {
		return
	}
	if _, err := lookPath(name, pf.pathEnv); err != nil {
		if strings.Contains(name, "/") {
			pf.fail(field, "program %s: %v", name, errors.Unwrap(err))
			return
		}
		pf.fail(field, "program %q not found in PATH (--bin first)", name)
	}
}

// command checks one argv or shell line and its working directory.
func (pf *preflight) command(field string, argv []string, sh, dir string) {
	if dir != "" && !atRunTime(dir) {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			pf.fail(field+".dir", "working directory %s does not exist", dir)
		}
	}
	if len(argv) > 0 {
		pf.program(field+".command[0]", argv[0])
		if i, script := scriptOf(argv); script != "" && !atRunTime(script) {
			if fi, err := os.Stat(script); err != nil || fi.IsDir() {
				pf.fail(fmt.Sprintf("%s.command[%d]", field, i), "script %s of %s does not exist", script, filepath.Base(argv[0]))
			}
		}
		return
	}
	pf.program(field+".sh", "sh")
	progs, err := shellPrograms(sh)
	if err != nil {
		pf.fail(field+".sh", "not a valid shell line: %v", err)
		return
	}
	for _, p := range progs {
		pf.program(field+".sh", p)
	}
}

// interpreters take a script file as their first non-option argument.
var interpreters = map[string]bool{"sh": true, "bash": true, "dash": true, "zsh": true, "ksh": true,
	"python": true, "python3": true, "perl": true, "ruby": true, "node": true}

// scriptOf returns the script an interpreter command runs (and its index), "" when there is none
// (`sh -c`, `python3 -m`, `perl -e`, options only).
func scriptOf(argv []string) (int, string) {
	if !interpreters[filepath.Base(argv[0])] {
		return 0, ""
	}
	for i, a := range argv[1:] {
		switch {
		case a == "-c" || a == "-m" || a == "-e" || a == "-":
			return 0, ""
		case a == "--":
			if i+2 < len(argv) {
				return i + 2, argv[i+2]
			}
			return 0, ""
		case strings.HasPrefix(a, "-"):
			continue
		}
		return i + 1, a
	}
	return 0, ""
}

// shellBuiltins are the commands a POSIX shell (and bash) runs itself.
var shellBuiltins = map[string]bool{
	":": true, ".": true, "[": true, "alias": true, "bg": true, "break": true, "cd": true, "command": true,
	"continue": true, "declare": true, "echo": true, "eval": true, "exec": true, "exit": true, "export": true,
	"false": true, "fg": true, "getopts": true, "hash": true, "jobs": true, "kill": true, "let": true,
	"local": true, "printf": true, "pwd": true, "read": true, "readonly": true, "return": true, "set": true,
	"shift": true, "source": true, "test": true, "times": true, "trap": true, "true": true, "type": true,
	"typeset": true, "ulimit": true, "umask": true, "unalias": true, "unset": true, "wait": true,
}

// shellPrograms lists the programs a shell line calls by a literal name: the first word of each
// simple command (after `exec` or `command`), minus builtins and the line's own functions.
// Names built at run time (`$X`, `$(...)`) cannot be known and are left out.
func shellPrograms(line string) ([]string, error) {
	f, err := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(strings.NewReader(line), "")
	if err != nil {
		return nil, err
	}
	funcs := map[string]bool{}
	var names []string
	syntax.Walk(f, func(n syntax.Node) bool {
		switch n := n.(type) {
		case *syntax.FuncDecl:
			if n.Name != nil { // nil for anonymous functions: `() cmd`
				funcs[n.Name.Value] = true
			}
			for _, l := range n.Names {
				funcs[l.Value] = true
			}
		case *syntax.CallExpr:
			args := n.Args
			for len(args) > 0 && (args[0].Lit() == "exec" || args[0].Lit() == "command") {
				if len(args) > 1 && args[0].Lit() == "command" && (args[1].Lit() == "-v" || args[1].Lit() == "-V") {
					return true // a lookup, not a run
				}
				args = args[1:]
				for len(args) > 0 && strings.HasPrefix(args[0].Lit(), "-") {
					args = args[1:] // options of exec and command
				}
			}
			if len(args) > 0 {
				if name := args[0].Lit(); name != "" && !shellBuiltins[name] && !slices.Contains(names, name) {
					names = append(names, name)
				}
			}
		}
		return true
	})
	out := names[:0]
	for _, n := range names {
		if !funcs[n] {
			out = append(out, n)
		}
	}
	return out, nil
}
