package testdb

import (
	"context"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/internal/lab"
	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/proxy"
)

// Lab starts a lab for t, stopped when t ends.
func Lab(t testing.TB, cfg lab.Config) *lab.Lab {
	t.Helper()
	l, err := lab.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Stop(context.Background()); err != nil { // a lab cuts at once
			t.Errorf("stop lab: %v", err)
		}
	})
	return l
}

// Checker is the worker's in-process backend against l: the real checker, as the CLI builds it.
func Checker(l *lab.Lab) queue.NewChecker {
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

// Work puts every candidate of l on the queue of st (chunks of chunk proxies), starts a worker
// with cfg (NewChecker and ParseProxy default to Checker(l) and proxy.Parse) and waits until
// the queue drains. The worker keeps running, registered with its layers, until t ends.
func Work(t testing.TB, st *queue.Store, l *lab.Lab, chunk int, cfg queue.WorkerConfig) *queue.Worker {
	t.Helper()
	ctx := context.Background()
	enqueue(t, st, l, chunk)
	if cfg.NewChecker == nil {
		cfg.NewChecker = Checker(l)
	}
	if cfg.ParseProxy == nil {
		cfg.ParseProxy = proxy.Parse
	}
	w, err := st.NewWorker(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := w.Stop(ctx); err != nil {
			t.Errorf("stop worker: %v", err)
		}
	})
	drain(t, st)
	return w
}

// Requeue puts every candidate of l on the queue again and waits until the worker Work started
// has checked them: a second check of each, in the history.
func Requeue(t testing.TB, st *queue.Store, l *lab.Lab, chunk int) {
	t.Helper()
	enqueue(t, st, l, chunk)
	drain(t, st)
}

func enqueue(t testing.TB, st *queue.Store, l *lab.Lab, chunk int) {
	t.Helper()
	var lines []string
	for _, p := range l.Candidates() {
		lines = append(lines, p.String())
	}
	if _, err := st.EnqueueChecks(context.Background(), queue.Split(lines, "lab", chunk),
		queue.CheckOptions{Judge: l.JudgeURL(), Timeout: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
}

func drain(t testing.TB, st *queue.Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if s, err := st.Wait(ctx, 50*time.Millisecond); err != nil {
		t.Fatalf("queue not drained: %v (%+v)", err, s)
	}
}
