package external

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/supervise"
	"github.com/proxyline/proxyline/internal/testkit"
)

// runner is shared by all tests: one per process, as in the worker. Set once by TestMain before
// any test runs, read-only afterwards.
var runner *supervise.Supervisor

// fakeChecker is the built testdata/fakechecker.
func fakeChecker(t testing.TB) string {
	return testkit.BuildBinary(t, "./internal/check/external/testdata/fakechecker", testkit.NoRace())
}

func TestMain(m *testing.M) {
	// The supervisor re-executes this binary as the init of a task's PID namespace.
	if code, ok := supervise.MaybeInit(); ok {
		os.Exit(code)
	}
	var err error
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
		os.Exit(1)
	}
	// Stopped after the tests and before the leak checks: its goroutines end with it.
	testkit.Main(m, testkit.Subreaper(), testkit.Cleanup(func() error {
		if err := runner.Stop(context.Background()); err != nil {
			return fmt.Errorf("stop supervisor: %w", err)
		}
		return nil
	}))
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

// waitNoProcesses fails unless no live process has marker in its command line soon (the kernel
// may take a moment to tear a killed tree down).
func waitNoProcesses(t *testing.T, marker string) {
	t.Helper()
	testkit.WaitForErr(t, 30*time.Second, "no process with "+marker, func() error {
		if left := processesWith(t, marker); len(left) > 0 {
			return fmt.Errorf("processes survived: %v", left)
		}
		return nil
	})
}
