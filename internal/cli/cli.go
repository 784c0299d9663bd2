// Package cli implements the proxyline command line: one file per subcommand, each with its own
// options struct, flag set and Validate method. Flags can also be set from PROXYLINE_* environment
// variables (flag "max-conns" is PROXYLINE_MAX_CONNS); a flag given on the command line wins.
// Results go to stdout, logs and progress to stderr.
package cli

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

	"github.com/proxyline/proxyline/internal/signals"
)

// Exit codes of proxyline, documented in the README.
const (
	ExitOK      = 0 // success
	ExitFailure = 1 // the command ran but its outcome is a failure (for check: no live proxy)
	ExitUsage   = 2 // bad flags, arguments or input
	ExitError   = 3 // a runtime error: I/O, database, permissions
)

// ExitError carries an exit code through an error return.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageError marks err as the user's mistake (exit 2).
func usageError(format string, args ...any) error {
	return &exitError{code: ExitUsage, err: fmt.Errorf(format, args...)}
}

// failure marks err as a negative outcome (exit 1) rather than a breakdown.
func failure(err error) error { return &exitError{code: ExitFailure, err: err} }

// Env is what a subcommand gets from the outside world. Nothing in this package reads os.Stdin,
// os.Stdout or the environment directly, so tests can run commands in-process. Stdout and Stderr
// must be safe for concurrent writes (as an *os.File is): commands that run subprocesses copy
// their output into them while logging.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
	// Force is closed on the second SIGINT/SIGTERM: commands that drain on the first signal (the
	// context given to run is canceled then) stop at once on the second.
	Force <-chan struct{}
	// Log is the logger the global --log-format and --log-level flags configured.
	Log *slog.Logger
}

// command is one subcommand.
type command struct {
	name    string
	summary string
	// run parses args with its own flag set and runs the command.
	run func(ctx context.Context, env *Env, args []string) error
}

// commands returns the subcommands of proxyline. Each is defined in its own file.
func commands() []command {
	cs := []command{
		checkCommand(),
		demoCommand(),
		labCommand(),
		judgeCommand(),
		cleanupCommand(),
		enqueueCommand(),
		workerCommand(),
		statusCommand(),
		exportCommand(),
		uiCommand(),
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].name < cs[j].name })
	return cs
}

// Main is the whole program: it installs the signal handling (the first SIGINT/SIGTERM cancels the
// context, the second closes Env.Force), runs the subcommand named by args[0] and returns the exit
// code. main calls it and exits with its result.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, force, stop := signals.Notify(context.Background())
	defer stop()
	env := &Env{Stdin: stdin, Stdout: stdout, Stderr: stderr, Getenv: os.Getenv, Force: force}
	return run(ctx, env, args)
}

// run dispatches to a subcommand and maps its error to an exit code.
func run(ctx context.Context, env *Env, args []string) int {
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	if env.Force == nil {
		env.Force = make(chan struct{})
	}
	if env.Log == nil {
		env.Log = newLogger(env.Stderr, env.Getenv("PROXYLINE_LOG_FORMAT"), env.Getenv("PROXYLINE_LOG_LEVEL"))
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(env.Stderr)
		if len(args) == 0 {
			return ExitUsage
		}
		return ExitOK
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, env, args[1:])
		return exitCode(env, c.name, err)
	}
	fmt.Fprintf(env.Stderr, "proxyline: unknown command %q\n\n", args[0])
	usage(env.Stderr)
	return ExitUsage
}

func exitCode(env *Env, name string, err error) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	code := ExitError
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	fmt.Fprintf(env.Stderr, "proxyline %s: %v\n", name, err)
	return code
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "proxyline scrapes, checks, queues, pools and rotates proxies.\n\nUsage: proxyline <command> [flags]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun 'proxyline <command> --help' for a command's flags. Every flag can also be set\nwith a PROXYLINE_* environment variable: --max-conns is PROXYLINE_MAX_CONNS.\n")
}

// parseFlags parses args into fs, then fills every flag not given on the command line from its
// PROXYLINE_* environment variable. A bad value names the variable.
func parseFlags(fs *flag.FlagSet, env *Env, args []string) error {
	fs.SetOutput(env.Stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &exitError{code: ExitUsage, err: err}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		name := envName(f.Name)
		if v := env.Getenv(name); v != "" {
			if e := fs.Set(f.Name, v); e != nil {
				err = usageError("environment %s=%q: %v", name, v, e)
			}
		}
	})
	return err
}

// parseOptions is the start of every subcommand that takes no positional argument: it parses
// args into fs (with the PROXYLINE_* variables), refuses positional arguments and validates the
// options, all as usage errors (exit 2).
func parseOptions(fs *flag.FlagSet, env *Env, args []string, o interface{ Validate() error }) error {
	if err := parseFlags(fs, env, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("unexpected argument %q", fs.Arg(0))
	}
	if err := o.Validate(); err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			return err
		}
		return usageError("%w", err)
	}
	return nil
}

// envName maps a flag name to its environment variable: "max-conns" → "PROXYLINE_MAX_CONNS".
func envName(flagName string) string {
	return "PROXYLINE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// newFlagSet returns a flag set whose usage message prints the summary and the flags, taken from
// the flag definitions themselves.
func newFlagSet(name, synopsis, summary string) *flag.FlagSet {
	fs := flag.NewFlagSet("proxyline "+name, flag.ContinueOnError)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: proxyline %s %s\n\n%s\n\nFlags (each also PROXYLINE_<NAME>):\n", name, synopsis, summary)
		fs.PrintDefaults()
	}
	return fs
}

func newLogger(w io.Writer, format, level string) *slog.Logger {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil || level == "" {
		lv = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
