// Package cli implements the killtest command line: run, list, validate and watch. Each subcommand has
// its own file, options struct and Validate method; every flag can also be set with a KILLTEST_*
// environment variable (--out is KILLTEST_OUT). Results go to stdout, logs to stderr.
//
// Exit codes: 0 every check passed, 1 the system failed a check, 2 the harness could not judge
// (bad scenario or flags, missing program, no permission, could not clean up).
package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"

	"golang.org/x/sys/unix"

	"github.com/proxyline/proxyline/internal/cmdline"
	"github.com/proxyline/proxyline/internal/signals"
)

// Exit codes of killtest, documented in docs/killtest.md.
const (
	ExitPass    = 0 // every check passed
	ExitFail    = 1 // the system failed a check
	ExitUnknown = 2 // the harness could not judge: bad input, missing program, could not clean up
)

// exitWith makes err carry the exit code.
func exitWith(code int, err error) error { return &cmdline.ExitError{Code: code, Err: err} }

// usageError marks a bad flag, argument or scenario (exit 2).
func usageError(format string, args ...any) error {
	return exitWith(ExitUnknown, fmt.Errorf(format, args...))
}

// Env is what a subcommand gets from the outside world (see cmdline.Env); the first
// SIGINT/SIGTERM cancels the context, which makes a run stop its components and clean up.
type Env = cmdline.Env

type command = cmdline.Command

// program is killtest's command line.
func program() *cmdline.Program {
	return &cmdline.Program{
		Name: "killtest",
		Intro: "killtest starts a system from a scenario, injects faults, and proves nothing was left behind\n" +
			"and nothing was lost.",
		Footer: "Exit codes: 0 all checks passed, 1 the system failed a check, 2 the harness could not judge.\n" +
			"Run 'killtest <command> --help' for its flags; each flag is also KILLTEST_<NAME>.",
		EnvPrefix: "KILLTEST_",
		Commands:  []command{runCommand(), listCommand(), validateCommand(), watchCommand()},
		UsageCode: ExitUnknown,
		ErrorCode: ExitUnknown,
		// The harness reports in its results; its log says only what went wrong (-v: more).
		NewLog: func(env *Env) *slog.Logger {
			return slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		},
	}
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
func Run(ctx context.Context, env *Env, args []string) int { return program().Run(ctx, env, args) }

func newFlagSet(name, synopsis, summary string) *flag.FlagSet {
	return program().NewFlagSet(name, synopsis, summary)
}

// parseFlags parses args, then fills unset flags from KILLTEST_* variables.
func parseFlags(fs *flag.FlagSet, env *Env, args []string) error {
	return program().ParseFlags(fs, env, args)
}
