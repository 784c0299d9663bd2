package checkrun

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/backend"
	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/internal/lab"
	"github.com/proxyline/proxyline/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// testIO is a run's outside world in a test: buffers, no terminal, no second signal.
func testIO(stdout, stderr io.Writer) IO {
	return IO{Stdout: stdout, Stderr: stderr, Log: slog.New(slog.DiscardHandler), Force: make(chan struct{}),
		StopContext: func(ctx context.Context) (context.Context, context.CancelFunc) {
			return context.WithCancel(context.WithoutCancel(ctx))
		}}
}

// TestRunLab checks the lab's own proxies into a results file: every result is in the file
// (jsonl, --all), nothing on stdout, the summary line and a clean comparison with the truth on
// stderr.
func TestRunLab(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "results.jsonl")
	var stdout, stderr bytes.Buffer
	// 15 s: a live proxy's check can take seconds under -race on a loaded machine; only the
	// blackholes wait for it, in parallel.
	err := Run(context.Background(), testIO(&stdout, &stderr), Config{Lab: true, Output: out, Format: check.FormatJSONL, All: true,
		Backend: backend.Config{Timeout: 15 * time.Second, Concurrency: 64}})
	if err != nil {
		t.Fatalf("Run: %v\nstderr:\n%s", err, stderr.String())
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout holds %q: the results go to the file", stdout.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	outcomes, err := lab.ReadOutcomes(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	n := len(outcomes)
	for _, want := range []string{"checked " + itoa(n) + " of " + itoa(n) + " in ", "0 false positives, 0 false negatives"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr does not say %q:\n%s", want, stderr.String())
		}
	}
}

// TestRunNoLive checks a list where nothing is alive: the run works and says so with ErrNoLive,
// and the text output stays empty.
func TestRunNoLive(t *testing.T) {
	t.Parallel()
	l, judge := startLab(t, lab.Config{Refused: 3})
	var stdout, stderr bytes.Buffer
	err := Run(context.Background(), testIO(&stdout, &stderr), Config{Proxies: l.Candidates(), Format: check.FormatText,
		Backend: backend.Config{Judge: judge, Timeout: 15 * time.Second}})
	if !errors.Is(err, ErrNoLive) {
		t.Fatalf("Run = %v, want ErrNoLive\nstderr:\n%s", err, stderr.String())
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout holds %q, want nothing", stdout.String())
	}
	if want := "checked 3 of 3 in "; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr does not say %q:\n%s", want, stderr.String())
	}
}

// TestRunUsage checks that a format the writer refuses is a usage error whose message is the
// writer's own, and that the results file is not left open.
func TestRunUsage(t *testing.T) {
	t.Parallel()
	l, judge := startLab(t, lab.Config{Refused: 1})
	var stdout, stderr bytes.Buffer
	err := Run(context.Background(), testIO(&stdout, &stderr), Config{Proxies: l.Candidates(), Format: "xml",
		Backend: backend.Config{Judge: judge}})
	if !errors.Is(err, ErrUsage) {
		t.Fatalf("Run = %v, want ErrUsage", err)
	}
	if strings.HasPrefix(err.Error(), "usage") {
		t.Errorf("message %q: the mark must not change the message", err)
	}
}

// startLab starts a lab for the test and returns it with its judge.
func startLab(t *testing.T, cfg lab.Config) (*lab.Lab, check.JudgeConfig) {
	t.Helper()
	cfg.Dir = t.TempDir()
	l, err := lab.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Stop(context.Background()); err != nil {
			t.Errorf("stop lab: %v", err)
		}
	})
	return l, check.JudgeConfig{URL: l.JudgeURL(), CAPEM: string(l.CAPEM())}
}

func itoa(n int) string { return strconv.Itoa(n) }
