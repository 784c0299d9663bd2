package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/cmdline"
	"github.com/proxyline/proxyline/internal/supervise"
	"github.com/proxyline/proxyline/internal/testkit"
)

// asMainEnv makes the test binary run as proxyline itself (see TestMain).
const asMainEnv = "PROXYLINE_CLI_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	// check --exec and worker run a supervisor, which re-executes this binary as a task's init.
	if code, ok := supervise.MaybeInit(); ok {
		os.Exit(code)
	}
	// demo re-executes its own binary as "worker": under test that binary is this one.
	if os.Getenv(asMainEnv) == "1" {
		os.Exit(Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	// The supervisors of check --exec and worker make this process a subreaper (see testkit.Subreaper).
	testkit.Main(m, testkit.Subreaper())
}

// TestParseFlagsEnv checks the PROXYLINE_* environment mechanism every subcommand relies on: a
// variable fills a flag that was not given, the command line wins, and a bad value names the variable.
func TestParseFlagsEnv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    time.Duration
		wantC   int
		wantErr string
	}{
		{name: "default", want: time.Second, wantC: 7},
		{name: "env fills", env: map[string]string{"PROXYLINE_TIMEOUT": "3s", "PROXYLINE_MAX_CONNS": "9"}, want: 3 * time.Second, wantC: 9},
		{name: "flag wins", args: []string{"-timeout", "5s"}, env: map[string]string{"PROXYLINE_TIMEOUT": "3s"}, want: 5 * time.Second, wantC: 7},
		{name: "bad env", env: map[string]string{"PROXYLINE_MAX_CONNS": "many"}, wantErr: "PROXYLINE_MAX_CONNS"},
		{name: "bad flag", args: []string{"-nope"}, wantErr: "nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fs := newFlagSet("x", "", "")
			timeout := fs.Duration("timeout", time.Second, "")
			conns := fs.Int("max-conns", 7, "")
			env := &Env{Stderr: &bytes.Buffer{}, Getenv: func(k string) string { return tt.env[k] }}
			err := parseFlags(fs, env, tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want mention of %q", err, tt.wantErr)
				}
				var ee *cmdline.ExitError
				if !errors.As(err, &ee) || ee.Code != ExitUsage {
					t.Fatalf("err = %#v, want a usage error (exit %d)", err, ExitUsage)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if *timeout != tt.want || *conns != tt.wantC {
				t.Fatalf("timeout=%v conns=%d, want %v %d", *timeout, *conns, tt.want, tt.wantC)
			}
		})
	}
}

func TestEnvName(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"max-conns": "PROXYLINE_MAX_CONNS", "t": "PROXYLINE_T", "judge-ca": "PROXYLINE_JUDGE_CA"} {
		if got := program().EnvName(in); got != want {
			t.Errorf("envName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRunDispatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args     []string
		code     int
		inStderr string
	}{
		{args: nil, code: ExitUsage, inStderr: "Commands:"},
		{args: []string{"--help"}, code: ExitOK, inStderr: "Commands:"},
		{args: []string{"frobnicate"}, code: ExitUsage, inStderr: `unknown command "frobnicate"`},
	}
	for _, tt := range tests {
		var stderr bytes.Buffer
		env := &Env{Stdout: &bytes.Buffer{}, Stderr: &stderr}
		if code := run(context.Background(), env, tt.args); code != tt.code {
			t.Errorf("run(%q) = %d, want %d", tt.args, code, tt.code)
		}
		if !strings.Contains(stderr.String(), tt.inStderr) {
			t.Errorf("run(%q) stderr = %q, want it to contain %q", tt.args, stderr.String(), tt.inStderr)
		}
	}
}

// TestEveryCommandHasHelp runs "<command> --help" for every subcommand: each must print its usage
// from its flag set and exit 0.
func TestEveryCommandHasHelp(t *testing.T) {
	t.Parallel()
	for _, c := range program().Commands {
		var stderr bytes.Buffer
		env := &Env{Stdout: &bytes.Buffer{}, Stderr: &stderr}
		if code := run(context.Background(), env, []string{c.Name, "--help"}); code != ExitOK {
			t.Errorf("%s --help: exit %d, stderr %q", c.Name, code, stderr.String())
		}
		if !strings.Contains(stderr.String(), "Usage: proxyline "+c.Name) {
			t.Errorf("%s --help printed %q, want a usage line", c.Name, stderr.String())
		}
		// A sentinel for "the config's value" must not read as a real default.
		if strings.Contains(stderr.String(), "(default -1)") {
			t.Errorf("%s --help shows a sentinel as a default:\n%s", c.Name, stderr.String())
		}
	}
}

func TestExitCodeMapping(t *testing.T) {
	t.Parallel()
	env := &Env{Stderr: &bytes.Buffer{}}
	for _, tt := range []struct {
		err  error
		want int
	}{
		{nil, ExitOK},
		{flag.ErrHelp, ExitOK},
		{usageError("bad %s", "x"), ExitUsage},
		{failure(errors.New("none alive")), ExitFailure},
		{errors.New("disk full"), ExitError},
		{errors.Join(errors.New("wrapped"), usageError("inner")), ExitUsage},
	} {
		p := program()
		p.Commands = []command{{Name: "x", Run: func(context.Context, *Env, []string) error { return tt.err }}}
		if got := p.Run(context.Background(), env, []string{"x"}); got != tt.want {
			t.Errorf("x returning %v: exit %d, want %d", tt.err, got, tt.want)
		}
	}
}
