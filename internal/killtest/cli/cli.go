// Package cli implements the killtest command line: run, list and validate. Each subcommand has
// its own file, options struct and Validate method; every flag can also be set with a KILLTEST_*
// environment variable (--out is KILLTEST_OUT). Results go to stdout, logs to stderr.
//
// Exit codes: 0 every check passed, 1 the system failed a check, 2 the harness could not judge
// (bad scenario or flags, missing program, no permission, could not clean up).
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/proxyline/proxyline/internal/signals"
)

// Exit codes of killtest, documented in docs/killtest.md.
const (
	ExitPass    = 0 // every check passed
	ExitFail    = 1 // the system failed a check
	ExitUnknown = 2 // the harness could not judge: bad input, missing program, could not clean up
)

type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageError marks a bad flag, argument or scenario (exit 2).
func usageError(format string, args ...any) error {
	return &exitError{code: ExitUnknown, err: fmt.Errorf(format, args...)}
}

// Env is what a subcommand gets from the outside world, so tests can run commands in-process.
type Env struct {
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
	// Force is closed on the second SIGINT/SIGTERM; the first cancels the context, which makes a
	// run stop its components and clean up.
	Force <-chan struct{}
	Log   *slog.Logger
}

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *Env, args []string) error
}

func commands() []command {
	cs := []command{runCommand(), listCommand(), validateCommand()}
	sort.Slice(cs, func(i, j int) bool { return cs[i].name < cs[j].name })
	return cs
}

// Main is the whole program: signal handling (first SIGINT/SIGTERM cancels, the second closes
// Env.Force), dispatch, and the exit code. main exits with its result.
func Main(args []string, stdout, stderr io.Writer) int {
	// Whatever started killtest may have leaked fds without O_CLOEXEC; they would leak into every
	// component and be blamed on the system by the fd checks.
	_ = unix.CloseRange(3, math.MaxUint32, unix.CLOSE_RANGE_CLOEXEC)
	ctx, force, stop := signals.Notify(context.Background())
	defer stop()
	return Run(ctx, &Env{Stdout: stdout, Stderr: stderr, Getenv: os.Getenv, Force: force}, args)
}

// Run dispatches args to a subcommand and maps its error to an exit code.
func Run(ctx context.Context, env *Env, args []string) int {
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	if env.Force == nil {
		env.Force = make(chan struct{})
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(env.Stderr)
		if len(args) == 0 {
			return ExitUnknown
		}
		return ExitPass
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, env, args[1:])
		if err == nil || errors.Is(err, flag.ErrHelp) {
			return ExitPass
		}
		code := ExitUnknown
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
		if ee == nil || ee.err.Error() != "" {
			fmt.Fprintf(env.Stderr, "killtest %s: %v\n", c.name, err)
		}
		return code
	}
	fmt.Fprintf(env.Stderr, "killtest: unknown command %q\n\n", args[0])
	usage(env.Stderr)
	return ExitUnknown
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "killtest starts a system from a scenario, injects faults, and proves nothing was left behind\nand nothing was lost.\n\nUsage: killtest <command> [flags] [args]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nExit codes: 0 all checks passed, 1 the system failed a check, 2 the harness could not judge.\nRun 'killtest <command> --help' for its flags; each flag is also KILLTEST_<NAME>.\n")
}

func newFlagSet(name, synopsis, summary string) *flag.FlagSet {
	fs := flag.NewFlagSet("killtest "+name, flag.ContinueOnError)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: killtest %s %s\n\n%s\n\nFlags (each also KILLTEST_<NAME>):\n", name, synopsis, summary)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args, then fills unset flags from KILLTEST_* variables.
func parseFlags(fs *flag.FlagSet, env *Env, args []string) error {
	fs.SetOutput(env.Stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &exitError{code: ExitUnknown, err: err}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		name := "KILLTEST_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := env.Getenv(name); v != "" {
			if e := fs.Set(f.Name, v); e != nil {
				err = usageError("environment %s=%q: %v", name, v, e)
			}
		}
	})
	return err
}
