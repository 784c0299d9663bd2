// Package cmdline is the command-line scaffolding proxyline and killtest share: a program made of
// subcommands, each with its own flag set whose usage text comes from the flag definitions;
// every flag also settable from an environment variable with the program's prefix (a flag given
// on the command line wins); errors that carry their exit code; and dispatch. Signals are not
// here: each program's Main installs them (internal/signals).
package cmdline

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
)

// Env is what a subcommand gets from the outside world. Nothing reads os.Stdin, os.Stdout or
// the environment directly, so tests can run commands in-process. Stdout and Stderr must be safe
// for concurrent writes (as an *os.File is): commands that run subprocesses copy their output
// into them while logging.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	// Stderr is shared by the logger and the command, from several goroutines (a supervisor's
	// reaper logs while the command prints its summary): Run makes it safe for concurrent use.
	Stderr io.Writer
	Getenv func(string) string
	// Force is closed on the second SIGINT/SIGTERM: commands that drain on the first signal (the
	// context given to Run is canceled then) stop at once on the second.
	Force <-chan struct{}
	// Log is the program's logger, writing to Stderr.
	Log *slog.Logger
}

// ExitError carries an exit code through an error return. An ExitError whose Err says nothing
// ("") sets the code without a message (the command already reported).
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// Command is one subcommand.
type Command struct {
	Name    string
	Summary string // one line, for the program's usage
	// Run parses args with its own flag set and runs the command.
	Run func(ctx context.Context, env *Env, args []string) error
}

// Program is a command-line program made of subcommands.
type Program struct {
	Name      string    // "proxyline"
	Intro     string    // the usage text's first paragraph
	Footer    string    // the usage text's last paragraph (exit codes, where help is)
	EnvPrefix string    // "PROXYLINE_": flag --max-conns is PROXYLINE_MAX_CONNS
	Commands  []Command // in any order; usage lists them by name
	// UsageCode is the exit code of bad flags, arguments or input, and of no command at all.
	UsageCode int
	// ErrorCode is the exit code of an error that carries none.
	ErrorCode int
	// NewLog makes Env.Log when the caller left it nil; nil: a text logger at level info.
	NewLog func(env *Env) *slog.Logger
}

// Run dispatches args[0] to its subcommand and maps the subcommand's error to an exit code: 0
// without error (or for --help), an ExitError's code, else ErrorCode. The error is printed on
// Stderr as "<program> <command>: <error>".
func (p *Program) Run(ctx context.Context, env *Env, args []string) int {
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	if env.Force == nil {
		env.Force = make(chan struct{})
	}
	env.Stderr = concurrentSafe(env.Stderr)
	if env.Log == nil {
		if p.NewLog != nil {
			env.Log = p.NewLog(env)
		} else {
			env.Log = slog.New(slog.NewTextHandler(env.Stderr, nil))
		}
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		p.Usage(env.Stderr)
		if len(args) == 0 {
			return p.UsageCode
		}
		return 0
	}
	for _, c := range p.Commands {
		if c.Name != args[0] {
			continue
		}
		err := c.Run(ctx, env, args[1:])
		if err == nil || errors.Is(err, flag.ErrHelp) {
			return 0
		}
		code := p.ErrorCode
		var ee *ExitError
		if errors.As(err, &ee) {
			code = ee.Code
		}
		if ee == nil || ee.Err.Error() != "" {
			fmt.Fprintf(env.Stderr, "%s %s: %v\n", p.Name, c.Name, err)
		}
		return code
	}
	fmt.Fprintf(env.Stderr, "%s: unknown command %q\n\n", p.Name, args[0])
	p.Usage(env.Stderr)
	return p.UsageCode
}

// Usage prints the program's usage: intro, commands with their summaries, footer.
func (p *Program) Usage(w io.Writer) {
	cs := append([]Command(nil), p.Commands...)
	sort.Slice(cs, func(i, j int) bool { return cs[i].Name < cs[j].Name })
	fmt.Fprintf(w, "%s\n\nUsage: %s <command> [flags] [args]\n\nCommands:\n", p.Intro, p.Name)
	for _, c := range cs {
		fmt.Fprintf(w, "  %-9s %s\n", c.Name, c.Summary)
	}
	if p.Footer != "" {
		fmt.Fprintf(w, "\n%s\n", p.Footer)
	}
}

// NewFlagSet returns a subcommand's flag set, whose usage message prints the synopsis, the
// summary and the flags, taken from the flag definitions themselves.
func (p *Program) NewFlagSet(name, synopsis, summary string) *flag.FlagSet {
	fs := flag.NewFlagSet(p.Name+" "+name, flag.ContinueOnError)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: %s %s %s\n\n%s\n\nFlags (each also %s<NAME>):\n", p.Name, name, synopsis, summary, p.EnvPrefix)
		fs.PrintDefaults()
	}
	return fs
}

// ParseFlags parses args into fs, then fills every flag not given on the command line from its
// environment variable (EnvName). Flags may come before, between or after the positional
// arguments (`run x.yaml --html r.html`), as with most command-line programs; everything after
// "--" is positional. fs.Args() returns the positional arguments in order. A bad flag or value
// is a usage error that names the flag or the variable.
func (p *Program) ParseFlags(fs *flag.FlagSet, env *Env, args []string) error {
	fs.SetOutput(env.Stderr)
	if err := parseInterspersed(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &ExitError{Code: p.UsageCode, Err: err}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		name := p.EnvName(f.Name)
		if v := env.Getenv(name); v != "" {
			if e := fs.Set(f.Name, v); e != nil {
				err = &ExitError{Code: p.UsageCode, Err: fmt.Errorf("environment %s=%q: %v", name, v, e)}
			}
		}
	})
	return err
}

// parseInterspersed parses flags wherever they are among args. The flag package stops at the
// first positional argument (or after "--"): take it and parse on from the next one.
func parseInterspersed(fs *flag.FlagSet, args []string) error {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if i := len(args) - len(rest) - 1; i >= 0 && args[i] == "--" {
			pos = append(pos, rest...) // after "--": all positional
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	// Leave the positional arguments in fs.Args().
	return fs.Parse(append([]string{"--"}, pos...))
}

// EnvName is the environment variable of a flag: "max-conns" → "<EnvPrefix>MAX_CONNS".
func (p *Program) EnvName(flagName string) string {
	return p.EnvPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// concurrentSafe is w, or w behind a lock when it is not safe for concurrent writes. An *os.File
// is (one write(2) each) and stays as it is, so that commands can still ask it for a terminal.
func concurrentSafe(w io.Writer) io.Writer {
	switch w.(type) {
	case nil, *os.File, *lockedWriter:
		return w
	}
	return &lockedWriter{w: w}
}

// lockedWriter serializes writes to w: an *os.File is safe for concurrent writes, but the
// writers tests and embedders pass (a bytes.Buffer) are not.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
