package api_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/api"
	"github.com/proxyline/proxyline/internal/lab"
	"github.com/proxyline/proxyline/internal/pool"
	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/internal/testdb"
)

// TestQueueWorkersSources: a real worker checks a lab into the pool; the API shows the jobs by
// state, the worker with its supervision layers, and each source's yield.
func TestQueueWorkersSources(t *testing.T) {
	t.Parallel()
	for _, engine := range testdb.Engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			l := testdb.Lab(t, lab.Config{HTTP: 6, SOCKS5: 3, Refused: 3})
			st := testdb.Open(t, engine)
			// Two sources named the lab's proxies: one all of them, one the first four.
			var seen []pool.Sighting
			for i, p := range l.Candidates() {
				seen = append(seen, pool.Sighting{Source: "all", Proxy: p, Seen: time.Now()})
				if i < 4 {
					seen = append(seen, pool.Sighting{Source: "some", Proxy: p, Seen: time.Now()})
				}
			}
			if err := pool.RecordSightings(context.Background(), st.DB(), seen); err != nil {
				t.Fatal(err)
			}
			layers := []string{"process_group", "pdeathsig", "subreaper", "cookie"}
			w := testdb.Work(t, st, l, 4, queue.WorkerConfig{Layers: layers, Concurrency: 2})
			c := newClient(t, st, false, api.Config{})

			var q api.Queue
			c.get("/api/v1/queue", &q)
			if q.Jobs["completed"] != 3 || q.Unfinished != 0 || len(q.Jobs) != 8 || q.JobsByKind["check"] != 3 ||
				!slices.Equal(q.States, api.JobStates()) || q.Failed == nil {
				t.Errorf("queue %+v", q)
			}

			var ws api.Workers
			c.get("/api/v1/workers", &ws)
			if len(ws.Workers) != 1 || ws.WorkersAlive != 1 || !ws.Workers[0].Alive || ws.Workers[0].ID != w.ID() ||
				!slices.Equal(ws.Workers[0].Layers, layers) || ws.Workers[0].Concurrency != 2 || len(ws.Layers) != 6 {
				t.Errorf("workers %+v", ws)
			}

			var src api.Sources
			c.get("/api/v1/sources", &src)
			if len(src.Sources) != 2 {
				t.Fatalf("sources %+v", src)
			}
			all := src.Sources[0]
			if all.Source != "all" || all.Candidates != 12 || all.Checked != 12 || all.Alive != 9 || all.Yield != 0.75 {
				t.Errorf("source all: %+v", all)
			}

			var status queue.Status
			c.get("/api/v1/status", &status)
			if status.Pool.Total != 12 || status.Pool.Alive != 9 || status.Jobs["completed"] != 3 || len(status.Workers) != 1 {
				t.Errorf("status %+v", status)
			}
		})
	}
}
