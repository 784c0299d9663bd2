package cmdline

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testProgram(runErr error, got *string) *Program {
	return &Program{
		Name: "prog", Intro: "prog does things.", Footer: "Exit codes: many.", EnvPrefix: "PROG_",
		UsageCode: 2, ErrorCode: 3,
		Commands: []Command{
			{Name: "zeta", Summary: "last"},
			{Name: "alpha", Summary: "first", Run: func(_ context.Context, env *Env, args []string) error {
				p := testProgram(nil, nil)
				fs := p.NewFlagSet("alpha", "[flags]", "Alpha.")
				v := fs.String("max-conns", "1", "how many")
				if err := p.ParseFlags(fs, env, args); err != nil {
					return err
				}
				if got != nil {
					*got = *v
				}
				return runErr
			}},
		},
	}
}

// TestRun: dispatch, exit codes, messages, usage sorted by name, and the environment prefix.
func TestRun(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		args     []string
		env      map[string]string
		runErr   error
		code     int
		stderr   string // must contain
		noStderr string // must not contain
		value    string
	}{
		{name: "no command", code: 2, stderr: "Commands:\n  alpha     first\n  zeta      last\n\nExit codes: many."},
		{name: "help", args: []string{"--help"}, code: 0, stderr: "Usage: prog <command>"},
		{name: "unknown", args: []string{"beta"}, code: 2, stderr: `prog: unknown command "beta"`},
		{name: "ok", args: []string{"alpha"}, code: 0, value: "1"},
		{name: "env", args: []string{"alpha"}, env: map[string]string{"PROG_MAX_CONNS": "9"}, code: 0, value: "9"},
		{name: "flag wins", args: []string{"alpha", "-max-conns", "5"}, env: map[string]string{"PROG_MAX_CONNS": "9"}, code: 0, value: "5"},
		{name: "command help", args: []string{"alpha", "--help"}, code: 0, stderr: "Flags (each also PROG_<NAME>):"},
		{name: "bad flag", args: []string{"alpha", "-nope"}, code: 2, stderr: "prog alpha: flag provided but not defined"},
		{name: "plain error", args: []string{"alpha"}, runErr: errors.New("disk full"), code: 3, stderr: "prog alpha: disk full"},
		{name: "coded error", args: []string{"alpha"}, runErr: &ExitError{Code: 1, Err: errors.New("none")}, code: 1, stderr: "prog alpha: none"},
		{name: "silent code", args: []string{"alpha"}, runErr: &ExitError{Code: 1, Err: errors.New("")}, code: 1, noStderr: "prog alpha"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stderr bytes.Buffer
			var value string
			env := &Env{Stdout: &bytes.Buffer{}, Stderr: &stderr, Getenv: func(k string) string { return tt.env[k] }}
			code := testProgram(tt.runErr, &value).Run(context.Background(), env, tt.args)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stderr %q does not contain %q", stderr.String(), tt.stderr)
			}
			if tt.noStderr != "" && strings.Contains(stderr.String(), tt.noStderr) {
				t.Errorf("stderr %q contains %q", stderr.String(), tt.noStderr)
			}
			if tt.value != "" && value != tt.value {
				t.Errorf("flag value %q, want %q", value, tt.value)
			}
		})
	}
}
