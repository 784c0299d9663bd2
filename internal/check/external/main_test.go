package external

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/proxyline/proxyline/internal/supervise"
)

// Set once by TestMain before any test runs, read-only afterwards.
var (
	fakeChecker string                // the built testdata/fakechecker
	runner      *supervise.Supervisor // shared by all tests: one per process, as in the worker
)

// suite runs the tests, then stops the supervisor and removes the fixture, so that goleak checks
// for leaks after the supervisor's goroutines have ended.
type suite struct {
	m       *testing.M
	cleanup func()
}

func (s suite) Run() int {
	code := s.m.Run()
	s.cleanup()
	return code
}

func TestMain(m *testing.M) {
	// The supervisor re-executes this binary as the init of a task's PID namespace.
	if code, ok := supervise.MaybeInit(); ok {
		os.Exit(code)
	}
	dir, err := os.MkdirTemp("", "external-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fakeChecker = filepath.Join(dir, "fakechecker")
	build := exec.Command("go", "build", "-o", fakeChecker, "./testdata/fakechecker")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build fakechecker: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	runner, err = supervise.New(supervise.Config{
		Name:  "external-test",
		Grace: 300 * time.Millisecond,
		Log:   slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err == nil {
		err = runner.Start(context.Background())
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "start supervisor: %v\n", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	goleak.VerifyTestMain(suite{m: m, cleanup: func() {
		runner.Stop()
		os.RemoveAll(dir)
	}})
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer // guarded by mu
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// processesWith lists the live processes whose command line contains marker.
func processesWith(t *testing.T, marker string) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(b) == 0 { // gone, or a zombie (whose cmdline is empty)
			continue
		}
		if strings.Contains(string(b), marker) {
			found = append(found, e.Name()+" "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return found
}

// waitNoProcesses fails unless no live process has marker in its command line within a few
// seconds (the kernel may take a moment to tear a killed tree down).
func waitNoProcesses(t *testing.T, marker string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := processesWith(t, marker)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes survived: %v", left)
		}
		time.Sleep(10 * time.Millisecond) // polling interval, bounded by the deadline
	}
}
