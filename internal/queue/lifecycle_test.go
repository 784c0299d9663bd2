package queue_test

import (
	"context"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/lab"
	"github.com/proxyline/proxyline/internal/lifecycle/lifecycletest"
	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/internal/testkit"
	"github.com/proxyline/proxyline/proxy"
)

// TestWorkerLifecycle checks the worker's lifecycle (docs/lifecycle.md) with a real SQLite file
// and the real checker against the lab: serving is a job of live proxies completed; long work is
// a job of proxies that answer after ten minutes, under a grace of ten minutes, so that only the
// stop context's end can cut it; after the cut the job is back in the queue and nothing of it
// reached the pool.
func TestWorkerLifecycle(t *testing.T) {
	t.Parallel()
	l, _ := startLab(t, lab.Config{HTTP: 2, Slow: 2, SlowDelay: 10 * time.Minute})
	var live, slow []string
	for _, tr := range l.Truth() {
		if tr.Kind == lab.KindSlow {
			slow = append(slow, tr.Proxy.String())
		} else {
			live = append(live, tr.Proxy.String())
		}
	}
	stores := map[*queue.Worker]*queue.Store{}
	ctx := context.Background()
	enqueue := func(t testing.TB, w *queue.Worker, lines []string) *queue.Store {
		t.Helper()
		st := stores[w]
		if _, err := st.EnqueueChecks(ctx, queue.Split(lines, "lab", len(lines)),
			queue.CheckOptions{Judge: l.JudgeURL(), Timeout: 10 * time.Minute}); err != nil {
			t.Fatal(err)
		}
		return st
	}
	lifecycletest.Run(t, lifecycletest.Subject[*queue.Worker]{
		New: func(t *testing.T) *queue.Worker {
			st := open(t, database(t, "sqlite"))
			w, err := st.NewWorker(queue.WorkerConfig{NewChecker: realChecker(l), ParseProxy: proxy.Parse, Concurrency: 2,
				Grace: 10 * time.Minute, Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			stores[w] = st // the subtests run one after the other
			return w
		},
		Serving: func(t *testing.T, w *queue.Worker) {
			st := enqueue(t, w, live)
			wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			if s, err := st.Wait(wctx, 20*time.Millisecond); err != nil || s.Jobs["completed"] != 1 {
				t.Fatalf("the job of live proxies was not completed: %v (%+v)", err, s)
			}
		},
		Busy: func(t *testing.T, w *queue.Worker) {
			st := enqueue(t, w, slow)
			testkit.WaitFor(t, time.Minute, "the slow job running", func() bool {
				s, err := st.Status(ctx)
				return err == nil && s.Jobs["running"] == 1
			})
		},
		Cut: func(t *testing.T, w *queue.Worker) {
			s, err := stores[w].Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if s.Jobs["running"] != 0 || s.Jobs["available"] != 1 || s.Pool.History != 0 || len(s.Workers) != 0 {
				t.Errorf("after the cut: jobs %v, pool %+v, workers %d; want the job available, no result, no worker",
					s.Jobs, s.Pool, len(s.Workers))
			}
		},
	})
}
