package queue_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/internal/testkit"
	"github.com/proxyline/proxyline/proxy"
)

// deadChecker is a checker whose set-up always fails, counting the tries.
func deadChecker(tries *atomic.Int64) queue.NewChecker {
	return func(context.Context, queue.CheckOptions) (queue.Checker, error) {
		tries.Add(1)
		return nil, fmt.Errorf("judge unreachable from here: %w", check.ErrSetup)
	}
}

// TestSetupFailuresDoNotBurnAttempts: a worker whose set-up always fails hands every job back
// without using an attempt, backs off, and stops itself (Failed) after SetupFailureLimit failures
// in a row; no job is discarded or failed.
func TestSetupFailuresDoNotBurnAttempts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := open(t, database(t, "sqlite"))
	if _, err := st.EnqueueChecks(ctx, queue.Split(proxies(8), "list", 2), queue.CheckOptions{Judge: "http://127.0.0.2:1/"}); err != nil {
		t.Fatal(err)
	}
	var tries atomic.Int64
	w, err := st.NewWorker(queue.WorkerConfig{NewChecker: deadChecker(&tries), ParseProxy: proxy.Parse, Concurrency: 4,
		SetupFailureLimit: 3, SetupBackoff: 50 * time.Millisecond, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.Failed():
	case <-time.After(60 * time.Second):
		t.Fatal("the worker did not give up")
	}
	// Three counted failures: at 0, after >= 50 ms, after >= 50+100 ms.
	if d := time.Since(started); d < 150*time.Millisecond {
		t.Errorf("gave up after %s: the failures were not spaced by the back-off", d)
	}
	if err := w.Err(); !errors.Is(err, check.ErrSetup) {
		t.Errorf("Err() = %v, want the set-up failure", err)
	}
	if err := w.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	s, err := st.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Unfinished != 4 || s.Jobs["discarded"] != 0 || s.Jobs["retryable"] != 0 || s.Jobs["running"] != 0 {
		t.Errorf("jobs %v after the worker gave up; want all 4 still to run, none retryable or discarded", s.Jobs)
	}
	if n := scalar(t, st, `SELECT count(*) FROM river_job WHERE attempt > 0 OR errors IS NOT NULL`); n != 0 {
		t.Errorf("%d jobs have an attempt or an error recorded", n)
	}
	if tries.Load() < 3 {
		t.Errorf("set-up tried %d times", tries.Load())
	}
}

// flakyChecker fails its set-up the first n times, then works (every proxy alive).
type flakyChecker struct{ left atomic.Int64 }

func (f *flakyChecker) new(context.Context, queue.CheckOptions) (queue.Checker, error) {
	if f.left.Add(-1) >= 0 {
		return nil, fmt.Errorf("temporary dir full: %w", check.ErrSetup)
	}
	return queue.PerProxy(func(_ context.Context, p proxy.Proxy) check.Result {
		return check.Result{Proxy: p, Class: check.Alive}
	}, queue.NewSlots(4)), nil
}

// TestSetupRecovers: set-up failures that stop before the limit cost the jobs nothing: every job
// completes at its first attempt.
func TestSetupRecovers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := open(t, database(t, "sqlite"))
	if _, err := st.EnqueueChecks(ctx, queue.Split(proxies(6), "list", 2), queue.CheckOptions{Judge: "http://127.0.0.2:1/"}); err != nil {
		t.Fatal(err)
	}
	f := &flakyChecker{}
	f.left.Store(2)
	w, err := st.NewWorker(queue.WorkerConfig{NewChecker: f.new, ParseProxy: proxy.Parse, Concurrency: 1,
		SetupFailureLimit: 5, SetupBackoff: 20 * time.Millisecond, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer w.Stop(context.Background())
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	s, err := st.Wait(wctx, 20*time.Millisecond)
	cancel()
	if err != nil {
		t.Fatalf("not drained: %v %+v", err, s)
	}
	select {
	case <-w.Failed():
		t.Error("the worker gave up")
	default:
	}
	if s.Jobs["completed"] != 3 {
		t.Errorf("jobs %v", s.Jobs)
	}
	if n := scalar(t, st, `SELECT count(*) FROM river_job WHERE attempt <> 1`); n != 0 {
		t.Errorf("%d jobs used more than one attempt", n)
	}
}

// TestSetupFailureOfALostJobNotCounted: a set-up that fails for a job taken over meanwhile (a
// worker paused while it prepared its checker: its deadlines passed when it woke) is not counted
// against the worker's set-up, and the job is left alone. Before, the worker logged "worker
// set-up failed" at ERROR, counted it, and with enough such jobs stopped itself (seen as a flake
// of TestPausedWorkerLeavesJobAlone: worker A SIGSTOPped during the judge's request).
func TestSetupFailureOfALostJobNotCounted(t *testing.T) {
	t.Parallel()
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := open(t, database(t, engine))
			ids, err := st.EnqueueChecks(ctx, queue.Split(proxies(2), "list", 2), queue.CheckOptions{Judge: "http://127.0.0.2:1/"})
			if err != nil {
				t.Fatal(err)
			}
			gate := make(chan struct{})
			var logs testkit.Buffer
			w, err := st.NewWorker(queue.WorkerConfig{ParseProxy: proxy.Parse, Concurrency: 1, SetupFailureLimit: 1,
				NewChecker: func(ctx context.Context, _ queue.CheckOptions) (queue.Checker, error) {
					select {
					case <-gate:
					case <-ctx.Done():
					}
					return nil, fmt.Errorf("prepare: judge: i/o timeout: %w", check.ErrSetup)
				},
				Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Start(ctx); err != nil {
				t.Fatal(err)
			}
			defer w.Stop(context.Background())
			testkit.WaitFor(t, 60*time.Second, "the job running", func() bool { return jobState(t, st, ids[0]) == "running" })
			// Another worker takes the job over while this one is "paused" in its set-up.
			markRunning(t, st, ids[0], 2, "host/20/200")
			close(gate)
			testkit.WaitFor(t, 60*time.Second, "the worker's verdict on its failed set-up", func() bool {
				return strings.Contains(logs.String(), "was taken over") || strings.Contains(logs.String(), "worker set-up failed")
			})
			testkit.WaitFor(t, 60*time.Second, "the fence leaving the job alone", func() bool {
				return strings.Contains(logs.String(), "left a job alone") || strings.Contains(logs.String(), "worker cannot work")
			})
			select {
			case <-w.Failed():
				t.Errorf("the worker gave up: %v", w.Err())
			default:
			}
			if strings.Contains(logs.String(), "worker set-up failed") {
				t.Errorf("a lost job's set-up failure was counted:\n%s", logs.String())
			}
			if got := readJob(t, st, ids[0]); got.State != "running" || got.Attempt != 2 {
				t.Errorf("the job taken over was touched: %+v", got)
			}
		})
	}
}
