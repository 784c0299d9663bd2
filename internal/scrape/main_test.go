package scrape

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/lab"
	"github.com/proxyline/proxyline/internal/supervise"
	"github.com/proxyline/proxyline/internal/testkit"
)

func TestMain(m *testing.M) {
	// --check --exec runs a supervisor, which re-executes this binary as a task's init.
	if code, ok := supervise.MaybeInit(); ok {
		os.Exit(code)
	}
	testkit.Main(m, testkit.Subreaper()) // its supervisors make this process a subreaper
}

// opts are the command's flag defaults, with the cache off.
func opts() Options {
	return Options{Format: "text", Timeout: 3 * time.Second, Concurrency: 50, Chunk: 100,
		Retries: -1, CIDRCap: -1, NoCache: true, Grace: 2 * time.Second}
}

// result is one Run.
type result struct {
	stdout, stderr *testkit.Buffer
	err            error
}

// runScrape runs Run with o; force, if not nil, is its Force channel.
func runScrape(t *testing.T, ctx context.Context, o Options, force chan struct{}) result {
	t.Helper()
	r := result{stdout: &testkit.Buffer{}, stderr: &testkit.Buffer{}}
	if force == nil {
		force = make(chan struct{})
	}
	log := slog.New(slog.NewTextHandler(r.stderr, nil))
	r.err = Run(ctx, IO{Stdout: r.stdout, Stderr: r.stderr, Log: log, Force: force}, o)
	return r
}

func startLab(t testing.TB, cfg lab.Config) *lab.Lab {
	t.Helper()
	l, err := lab.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Stop(context.Background()); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return l
}

// writeFile writes content to name in dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func slogTo(w *testkit.Buffer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

func dirExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// assertNoTemp fails if a temporary file of ours is left anywhere under dir.
func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), ".tmp.") {
			t.Errorf("temporary file left: %s", p)
		}
		return nil
	})
}
