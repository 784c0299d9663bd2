package external

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/proxyline/proxyline/internal/supervise"
)

// TestToolEnvironment: the tool gets a minimal environment: PATH, HOME, LANG, LC_*, TZ, TERM,
// TMPDIR set to its private run directory, the supervisor's cookie and the variables named in
// Env; never a PROXYLINE_* variable (the database URL and its password) nor anything else.
// Not parallel: it sets variables of this process.
func TestToolEnvironment(t *testing.T) {
	const password = "s3cret-db-pw"
	t.Setenv("PROXYLINE_DATABASE", "postgres://proxyline:"+password+"@127.0.0.1:5432/test")
	t.Setenv("PROXYLINE_JUDGE", "http://127.0.0.1:9/")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "also-"+password)
	t.Setenv("LC_ALL", "C.UTF-8")
	t.Setenv("TZ", "UTC")
	t.Setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
	t.Setenv("TMPDIR", t.TempDir())
	dump := filepath.Join(t.TempDir(), "env")
	c := &Checker{Template: fakeChecker(t) + " -f {in} -o {out} -mode env -pids " + dump, Env: []string{"HTTPS_PROXY"}, Runner: runner}
	chunk, live := testChunk(t)
	got, err := c.CheckChunk(context.Background(), chunk)
	if err != nil || len(got) != len(live) {
		t.Fatalf("CheckChunk = %v, %v", got, err)
	}
	b, err := os.ReadFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, kv := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	if strings.Contains(string(b), password) {
		t.Errorf("the database password reached the tool:\n%s", b)
	}
	for k := range env {
		allowed := map[string]bool{"PATH": true, "HOME": true, "LANG": true, "TZ": true, "TERM": true, "TMPDIR": true,
			supervise.CookieEnv: true, "HTTPS_PROXY": true}
		if !allowed[k] && !strings.HasPrefix(k, "LC_") {
			t.Errorf("the tool got %s", k)
		}
	}
	if _, err := supervise.ParseCookie(env[supervise.CookieEnv]); err != nil {
		t.Errorf("cookie: %v (environment %v)", err, env)
	}
	for k, want := range map[string]string{"LC_ALL": "C.UTF-8", "TZ": "UTC", "HTTPS_PROXY": "http://127.0.0.1:3128", "PATH": os.Getenv("PATH")} {
		if env[k] != want {
			t.Errorf("%s = %q, want %q", k, env[k], want)
		}
	}
	// TMPDIR is the run's private directory, inside the configured temporary directory.
	if dir := env["TMPDIR"]; filepath.Dir(dir) != os.Getenv("TMPDIR") || !strings.HasPrefix(filepath.Base(dir), supervise.TaskDirPrefix) {
		t.Errorf("TMPDIR = %q, want a run directory in %s", dir, os.Getenv("TMPDIR"))
	}
	if left, _ := os.ReadDir(os.Getenv("TMPDIR")); len(left) > 0 {
		t.Errorf("run directory left behind: %v", left)
	}
}

func TestEnvValidate(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		names []string
		want  string
	}{
		{[]string{"PROXYLINE_DATABASE"}, "never passed"},
		{[]string{"HTTP_PROXY", "TMPDIR"}, "TMPDIR"},
		{[]string{"A-B"}, "not a variable name"},
		{[]string{""}, "not a variable name"},
		{[]string{"1X"}, "not a variable name"},
	} {
		c := Checker{Template: "mubeng -f {in}", Env: tt.names, Runner: runner}
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Validate with Env %q = %v, want %q", tt.names, err, tt.want)
		}
	}
	ok := Checker{Template: "mubeng -f {in}", Env: []string{"HTTP_PROXY", "no_proxy", "_X1"}, Runner: runner}
	if err := ok.Validate(); err != nil {
		t.Error(err)
	}
}

// TestRunDirectory: the chunk file is 0600 in a 0700 directory of the supervisor's naming, and
// the tool's TMPDIR is that directory.
func TestRunDirectory(t *testing.T) {
	t.Parallel()
	tmp, mark := t.TempDir(), filepath.Join(t.TempDir(), "stat")
	c := &Checker{Template: `sh -c 'stat -c "%a %n" "$TMPDIR" "$1" > "$2"' sh {in} ` + mark, TempDir: tmp, Runner: runner}
	chunk, _ := testChunk(t)
	if _, err := c.CheckChunk(context.Background(), chunk); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(mark)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "700 "+tmp+"/"+supervise.TaskDirPrefix) || !strings.HasPrefix(lines[1], "600 ") ||
		!strings.HasSuffix(lines[1], "/in.txt") || !strings.HasPrefix(lines[1][4:], lines[0][4:]) {
		t.Fatalf("modes and names: %q", lines)
	}
}

// TestSetupErrors: a run directory that cannot be made is the worker's set-up failing, not the
// tool, and so is a program that is not there or not executable.
func TestSetupErrors(t *testing.T) {
	t.Parallel()
	chunk, _ := testChunk(t)
	notExec := filepath.Join(t.TempDir(), "tool")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Checker{
		{Template: "true {in}", TempDir: filepath.Join(t.TempDir(), "missing", "dir"), Runner: runner},
		{Template: notExec + " {in}", Runner: runner},
		{Template: "no-such-tool-anywhere {in}", Runner: runner},
	} {
		if _, err := c.CheckChunk(context.Background(), chunk); !errors.Is(err, ErrSetup) || errors.Is(err, ErrFailed) {
			t.Errorf("%q in %q: %v, want ErrSetup", c.Template, c.TempDir, err)
		}
	}
	// A tool that ran and failed is not.
	c := &Checker{Template: "sh -c 'exit 127' {in}", Runner: runner}
	if _, err := c.CheckChunk(context.Background(), chunk); !errors.Is(err, ErrFailed) || errors.Is(err, ErrSetup) {
		t.Errorf("exit 127: %v, want ErrFailed", err)
	}
}

// TestOutNotRegular: an {out} that is a symbolic link is not followed, and a FIFO cannot make
// the worker wait: both fail the chunk.
func TestOutNotRegular(t *testing.T) {
	t.Parallel()
	chunk, _ := testChunk(t)
	list := filepath.Join(t.TempDir(), "list")
	if err := os.WriteFile(list, []byte("http://127.0.0.2:8080\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ make, want string }{
		{"ln -s " + list + ` "$1"`, "{out}"},
		{`mkfifo "$1"`, "not a regular file"},
	} {
		c := &Checker{Template: "sh -c '" + tt.make + "' sh {out}", Runner: runner}
		if live, err := c.CheckChunk(context.Background(), chunk); !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, %v; want ErrFailed saying %q", tt.make, live, err, tt.want)
		}
	}
}
