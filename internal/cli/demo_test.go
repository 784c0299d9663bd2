package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestDemo runs the README's first command, small: lab, SQLite queue, two real worker
// processes (this test binary re-executed as proxyline), drain, export. The pool must match the
// lab's truth exactly, the workers must be gone, and the database must be kept.
func TestDemo(t *testing.T) {
	t.Setenv(asMainEnv, "1")
	dir := t.TempDir()
	var stdout bytes.Buffer
	var stderr lockedBuffer // the workers' stderr is copied into it while the demo logs
	env := &Env{Stdout: &stdout, Stderr: &stderr}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := run(ctx, env, []string{"demo", "--dir", dir, "--per-kind", "2", "-t", "1s", "--chunk", "4"})
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
}

// lockedBuffer is a bytes.Buffer safe for concurrent writers, as os.Stderr is.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer // guarded by mu
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
