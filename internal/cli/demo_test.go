package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/proctab"
	"github.com/proxyline/proxyline/internal/supervise"
	"github.com/proxyline/proxyline/internal/testkit"
)

// TestDemo runs the README's first command, small: lab, SQLite queue, two real worker
// processes (this test binary re-executed as proxyline), drain, export. The pool must match the
// lab's truth exactly, the workers must be gone, and the database must be kept.
func TestDemo(t *testing.T) {
	t.Setenv(asMainEnv, "1")
	dir := t.TempDir()
	var stdout bytes.Buffer
	var stderr testkit.Buffer // the workers' stderr is copied into it while the demo logs
	env := &Env{Stdout: &stdout, Stderr: &stderr}
	// -t 15s: a live proxy's check took more than 1 s at load 40 under -race and counted as a
	// timeout (a false negative); a longer -t costs only the blackholes' wait, in parallel.
	// The context bounds a hang, not the speed.
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	code := run(ctx, env, []string{"demo", "--dir", dir, "--per-kind", "2", "-t", "15s", "--chunk", "4"})
	if code != ExitOK {
		t.Fatalf("demo exit %d\nstderr:\n%s", code, stderr.String())
	}
	// 2 of each live kind: http, http auth, socks4, socks4a, socks5, socks5 auth, transparent,
	// anonymous, bare = 18 live proxies, one per line on stdout.
	if got := strings.Count(stdout.String(), "\n"); got != 18 {
		t.Errorf("stdout has %d live proxies, want 18:\n%s", got, stdout.String())
	}
	for _, want := range []string{"0 false positives, 0 false negatives", "completed=", "unfinished=0"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr does not say %q:\n%s", want, stderr.String())
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "proxyline.db")); err != nil {
		t.Errorf("database not kept: %v", err)
	}
	if n := strings.Count(stderr.String(), "demo: worker started"); n != 2 {
		t.Errorf("%d workers started, want 2:\n%s", n, stderr.String())
	}
	if left := demoTasksAlive(t); len(left) > 0 {
		t.Errorf("worker processes left after the demo: %v", left)
	}
}

// demoTasksAlive lists the live processes carrying a task cookie of this process's "demo"
// supervisor: the demo's workers, which must all be gone when it returns.
func demoTasksAlive(t *testing.T) []string {
	t.Helper()
	ns, err := proctab.OwnPIDNamespace()
	if err != nil {
		t.Fatal(err)
	}
	prefix := []byte(supervise.CookieEnv + "=" + strconv.FormatUint(ns, 10) + ":" + strconv.Itoa(os.Getpid()) + ":")
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, e := range entries {
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue // not a process, or gone
		}
		for kv := range bytes.SplitSeq(env, []byte{0}) {
			if bytes.HasPrefix(kv, prefix) && bytes.Contains(kv, []byte(":demo-")) {
				left = append(left, e.Name()+" "+string(kv))
			}
		}
	}
	return left
}
