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

	"github.com/proxyline/proxyline/internal/cmdline"
	"github.com/proxyline/proxyline/internal/secret"
	"github.com/proxyline/proxyline/internal/signals"
)

// Exit codes of proxyline, documented in the README.
const (
	ExitOK      = 0 // success
	ExitFailure = 1 // the command ran but its outcome is a failure (for check: no live proxy)
	ExitUsage   = 2 // bad flags, arguments or input
	ExitError   = 3 // a runtime error: I/O, database, permissions
)

// usageError marks err as the user's mistake (exit 2).
func usageError(format string, args ...any) error {
	return &cmdline.ExitError{Code: ExitUsage, Err: fmt.Errorf(format, args...)}
}

// failure marks err as a negative outcome (exit 1) rather than a breakdown.
func failure(err error) error { return &cmdline.ExitError{Code: ExitFailure, Err: err} }

// Env is what a subcommand gets from the outside world (see cmdline.Env).
type Env = cmdline.Env

// command is one subcommand.
type command = cmdline.Command

// program is proxyline's command line: its subcommands, each defined in its own file.
func program() *cmdline.Program {
	return &cmdline.Program{
		Name:  "proxyline",
		Intro: "proxyline checks proxies, spreads the work over a durable queue and keeps a pool with history.",
		Footer: "Run 'proxyline <command> --help' for a command's flags. Every flag can also be set\n" +
			"with a PROXYLINE_* environment variable: --max-conns is PROXYLINE_MAX_CONNS. Exit codes:\n" +
			"0 success, 1 a negative outcome, 2 bad flags or input, 3 a runtime error.",
		EnvPrefix: "PROXYLINE_",
		Commands: redactErrors([]command{
			checkCommand(), demoCommand(), labCommand(), scrapeCommand(), judgeCommand(), cleanupCommand(),
			enqueueCommand(), workerCommand(), statusCommand(), exportCommand(), uiCommand(), serveCommand(), runCommand(),
		}),
		UsageCode: ExitUsage,
		ErrorCode: ExitError,
		NewLog: func(env *Env) *slog.Logger {
			return newLogger(env.Stderr, env.Getenv("PROXYLINE_LOG_FORMAT"), env.Getenv("PROXYLINE_LOG_LEVEL"))
		},
	}
}

// redactErrors makes every command's error pass through secret.Error, so that a password in a
// database URL or a proxy never reaches the "proxyline <command>: <error>" line.
func redactErrors(cs []command) []command {
	for i := range cs {
		run := cs[i].Run
		cs[i].Run = func(ctx context.Context, env *Env, args []string) error {
			return secret.Error(run(ctx, env, args))
		}
	}
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
func run(ctx context.Context, env *Env, args []string) int { return program().Run(ctx, env, args) }

// parseFlags parses args into fs, then fills every flag not given on the command line from its
// PROXYLINE_* environment variable. A bad value names the variable.
func parseFlags(fs *flag.FlagSet, env *Env, args []string) error {
	return program().ParseFlags(fs, env, args)
}

// newFlagSet returns a subcommand's flag set, its usage taken from the flag definitions.
func newFlagSet(name, synopsis, summary string) *flag.FlagSet {
	return program().NewFlagSet(name, synopsis, summary)
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
		var ee *cmdline.ExitError
		if errors.As(err, &ee) {
			return err
		}
		return usageError("%w", err)
	}
	return nil
}

func newLogger(w io.Writer, format, level string) *slog.Logger {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil || level == "" {
		lv = slog.LevelInfo
	}
	// Every record passes through secret.ReplaceAttr: a password that reaches a log by any path
	// (an error from a library, a URL in a message) is masked.
	opts := &slog.HandlerOptions{Level: lv, ReplaceAttr: secret.ReplaceAttr}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
