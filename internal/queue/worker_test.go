package queue_test

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/internal/lab"
	"github.com/proxyline/proxyline/internal/pool"
	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/internal/testkit"
	"github.com/proxyline/proxyline/proxy"
)

// startLab starts a lab for t and returns it with its candidates as list lines.
func startLab(t testing.TB, cfg lab.Config) (*lab.Lab, []string) {
	t.Helper()
	l, err := lab.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start lab: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Stop(context.Background()); err != nil {
			t.Errorf("stop lab: %v", err)
		}
	})
	var lines []string
	for _, p := range l.Candidates() {
		lines = append(lines, p.String())
	}
	return l, lines
}

// realChecker is the worker's in-process backend: the real checker, as the CLI builds it.
func realChecker(l *lab.Lab) queue.NewChecker {
	return func(ctx context.Context, o queue.CheckOptions) (queue.Checker, error) {
		c, err := check.New(check.Options{Judge: o.Judge, Timeout: o.Timeout, RootCAs: l.CAPool()})
		if err != nil {
			return nil, err
		}
		if err := c.Prepare(ctx); err != nil {
			return nil, err
		}
		return queue.PerProxy(c.Check, queue.NewSlots(64)), nil
	}
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// TestWorkerChecksIntoPool runs an in-process worker with the real checker against the lab and
// compares the pool with the lab's truth, on both engines.
func TestWorkerChecksIntoPool(t *testing.T) {
	t.Parallel()
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			l, lines := startLab(t, lab.Config{HTTP: 20, SOCKS5: 10, SOCKS4: 5, HTTPS: 5, Refused: 10, Liar: 5, Bare: 6, HTTPAuth: 4})
			st := open(t, database(t, engine))
			ctx := context.Background()
			if _, err := st.EnqueueChecks(ctx, queue.Split(lines, "lab", 7), queue.CheckOptions{Judge: l.JudgeURL(), Timeout: 5 * time.Second}); err != nil {
				t.Fatal(err)
			}
			w, err := st.NewWorker(queue.WorkerConfig{NewChecker: realChecker(l), ParseProxy: proxy.Parse, Concurrency: 3, Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Start(ctx); err != nil {
				t.Fatal(err)
			}
			wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			s, err := st.Wait(wctx, 50*time.Millisecond)
			cancel()
			if err != nil {
				t.Fatalf("queue not drained: %v (%+v)", err, s)
			}
			if err := w.Stop(context.Background()); err != nil {
				t.Fatalf("stop: %v", err)
			}
			if s.Jobs["completed"] != int64((len(lines)+6)/7) {
				t.Errorf("jobs = %v", s.Jobs)
			}
			es, err := pool.List(ctx, st.DB(), true)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]pool.Entry{}
			for _, e := range es {
				got[e.Addr+"|"+e.Scheme] = e
			}
			if len(es) != len(lines) {
				t.Errorf("pool has %d rows for %d proxies", len(es), len(lines))
			}
			for _, tr := range l.Truth() {
				e, ok := got[tr.Proxy.Addr()+"|"+string(tr.Proxy.Scheme)]
				if !ok {
					t.Errorf("%s: no pool row", tr.Proxy)
					continue
				}
				if string(e.Class) != tr.Class {
					t.Errorf("%s (%s): class %s, want %s (%s)", tr.Proxy, tr.Kind, e.Class, tr.Class, e.Err)
				}
				if tr.Alive && e.Protocol != string(tr.Scheme) {
					t.Errorf("%s: protocol %s, want %s", tr.Proxy, e.Protocol, tr.Scheme)
				}
			}
			// The worker unregistered itself.
			if s, err := st.Status(ctx); err != nil || len(s.Workers) != 0 {
				t.Errorf("workers after stop = %+v, %v", s.Workers, err)
			}
		})
	}
}

// TestWorkerStopHandsBack stops a worker while its jobs wait on slow proxies, with a grace far
// shorter than they need: the jobs go back to available at once, nothing stays running, and
// no result of the cut-short jobs reaches the pool.
func TestWorkerStopHandsBack(t *testing.T) {
	t.Parallel()
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			l, lines := startLab(t, lab.Config{Slow: 8, SlowDelay: 20 * time.Second})
			st := open(t, database(t, engine))
			ctx := context.Background()
			if _, err := st.EnqueueChecks(ctx, queue.Split(lines, "lab", 4), queue.CheckOptions{Judge: l.JudgeURL(), Timeout: 30 * time.Second}); err != nil {
				t.Fatal(err)
			}
			w, err := st.NewWorker(queue.WorkerConfig{NewChecker: realChecker(l), ParseProxy: proxy.Parse, Concurrency: 2,
				Grace: 200 * time.Millisecond, Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Start(ctx); err != nil {
				t.Fatal(err)
			}
			testkit.WaitFor(t, 30*time.Second, "both jobs running", func() bool {
				s, err := st.Status(ctx)
				return err == nil && s.Jobs["running"] == 2
			})
			start := time.Now()
			if err := w.Stop(context.Background()); err != nil {
				t.Fatalf("stop: %v", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("stop took %s with a 200ms grace", d)
			}
			s, err := st.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if s.Jobs["running"] != 0 || s.Jobs["available"] != 2 || s.Pool.History != 0 {
				t.Errorf("after stop: jobs %v, pool %+v; want 2 available, none running, no results", s.Jobs, s.Pool)
			}
		})
	}
}

// labConfig is a mixed lab of about n proxies, quick to check.
func labConfig(n int) lab.Config {
	return lab.Config{HTTP: n / 2, SOCKS5: n / 4, Refused: n / 8, Liar: n / 8}
}

// slowLab is a lab of n live proxies that each answer after delay.
func slowLab(n int, delay time.Duration) lab.Config {
	return lab.Config{Slow: n, SlowDelay: delay}
}

// TestWorkerConfigDeadAfter: the dead-after bound must leave room for three heartbeats, so that
// a worker that misses one or two (a busy database) is not declared dead.
func TestWorkerConfigDeadAfter(t *testing.T) {
	t.Parallel()
	base := queue.WorkerConfig{NewChecker: func(context.Context, queue.CheckOptions) (queue.Checker, error) { return nil, nil }, ParseProxy: proxy.Parse}
	tests := []struct {
		deadAfter, beat time.Duration
		ok              bool
	}{
		{0, 0, true},                                // defaults: 10 s, 2 s
		{6 * time.Second, 0, true},                  // three default heartbeats
		{5 * time.Second, 0, false},                 // fewer
		{time.Second, 300 * time.Millisecond, true}, // tests may beat faster
		{-time.Second, 0, false},
	}
	for _, tt := range tests {
		c := base
		c.DeadAfter, c.HeartbeatInterval = tt.deadAfter, tt.beat
		if err := c.Validate(); (err == nil) != tt.ok {
			t.Errorf("DeadAfter %s, HeartbeatInterval %s: err %v, want ok=%v", tt.deadAfter, tt.beat, err, tt.ok)
		}
	}
}
