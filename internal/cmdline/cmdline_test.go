package cmdline

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/proxyline/proxyline/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

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

// TestFlagsAfterArguments: flags may follow positional arguments; "--" ends the flags.
func TestFlagsAfterArguments(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args []string
		html string
		pos  string
	}{
		{[]string{"a.yaml", "--html", "r.html"}, "r.html", "a.yaml"},
		{[]string{"--html", "r.html", "a.yaml", "b.yaml"}, "r.html", "a.yaml b.yaml"},
		{[]string{"a.yaml", "-html=r.html", "b.yaml"}, "r.html", "a.yaml b.yaml"},
		{[]string{"a.yaml", "--", "--html", "x"}, "", "a.yaml --html x"},
		{[]string{"-", "--html", "r"}, "r", "-"},
		{nil, "", ""},
	} {
		p := testProgram(nil, nil)
		fs := p.NewFlagSet("run", "", "")
		html := fs.String("html", "", "")
		if err := p.ParseFlags(fs, &Env{Stderr: &bytes.Buffer{}, Getenv: func(string) string { return "" }}, tt.args); err != nil {
			t.Fatalf("%v: %v", tt.args, err)
		}
		if *html != tt.html || strings.Join(fs.Args(), " ") != tt.pos {
			t.Errorf("%v: html %q args %q, want %q %q", tt.args, *html, fs.Args(), tt.html, tt.pos)
		}
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

// TestStderrSharedAcrossGoroutines: a command's goroutines log (Env.Log) and print (Env.Stderr)
// at once, as a supervisor's reaper does while check prints its summary; with a bytes.Buffer as
// stderr, -race catches any write that is not serialized, and no line may be torn.
func TestStderrSharedAcrossGoroutines(t *testing.T) {
	var stderr bytes.Buffer
	p := &Program{Name: "prog", Commands: []Command{{Name: "work", Run: func(ctx context.Context, env *Env, _ []string) error {
		done := make(chan struct{})
		go func() {
			defer close(done)
			for range 200 {
				env.Log.Info("from the reaper")
			}
		}()
		for range 200 {
			_, _ = env.Stderr.Write([]byte("from the command\n"))
		}
		<-done
		return nil
	}}}}
	if code := p.Run(context.Background(), &Env{Stderr: &stderr}, []string{"work"}); code != 0 {
		t.Fatalf("exit %d", code)
	}
	lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
	if len(lines) != 400 {
		t.Fatalf("%d lines, want 400", len(lines))
	}
	for _, l := range lines {
		if l != "from the command" && !strings.HasSuffix(l, "msg=\"from the reaper\"") {
			t.Fatalf("torn line %q", l)
		}
	}
}
