package queue_test

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/internal/pool"
	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/proxy"
)

func open(t testing.TB, db string) *queue.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := queue.Open(ctx, queue.Config{Database: db})
	if err != nil {
		t.Fatalf("open %s: %v", db, err)
	}
	t.Cleanup(st.Close)
	return st
}

func proxies(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("http://127.0.%d.%d:8080", 10+i/250, 1+i%250)
	}
	return out
}

func TestOpenMigratesOnceConcurrently(t *testing.T) {
	t.Parallel()
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			db := database(t, engine)
			// Several stores opening a new database at once: migrations are serialised.
			var wg sync.WaitGroup
			errs := make(chan error, 8)
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					st, err := queue.Open(context.Background(), queue.Config{Database: db})
					if err != nil {
						errs <- err
						return
					}
					st.Close()
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Errorf("concurrent open: %v", err)
			}
			st := open(t, db)
			s, err := st.Status(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if s.Unfinished != 0 || s.Pool.Total != 0 || s.Engine != engine {
				t.Errorf("fresh status = %+v", s)
			}
		})
	}
}

func TestEnqueueAllOrNothingAndStatus(t *testing.T) {
	t.Parallel()
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			st := open(t, database(t, engine))
			ctx := context.Background()
			ids, err := st.EnqueueChecks(ctx, queue.Split(proxies(250), "list.txt", 100), queue.CheckOptions{Judge: "http://127.0.0.2/"})
			if err != nil {
				t.Fatal(err)
			}
			if len(ids) != 3 {
				t.Fatalf("jobs = %d, want 3", len(ids))
			}
			// Invalid options: nothing is inserted.
			if _, err := st.EnqueueChecks(ctx, queue.Split(proxies(10), "x", 5), queue.CheckOptions{Timeout: -1}); err == nil {
				t.Error("negative timeout accepted")
			}
			s, err := st.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if s.Jobs["available"] != 3 || s.Unfinished != 3 || s.JobsByKind[queue.KindCheck] != 3 {
				t.Errorf("status jobs = %v unfinished %d by kind %v", s.Jobs, s.Unfinished, s.JobsByKind)
			}
		})
	}
}

// markRunning makes a job look as if the client `by` were running attempt `attempt` of it.
func markRunning(t *testing.T, st *queue.Store, id int64, attempt int, by string) {
	t.Helper()
	q := `UPDATE river_job SET state = 'running', attempt = ?, attempted_at = strftime('%Y-%m-%d %H:%M:%f', 'now'), attempted_by = jsonb(json_array(?)) WHERE id = ?`
	if st.Engine() == queue.EnginePostgres {
		q = `UPDATE river_job SET state = 'running', attempt = ?, attempted_at = now(), attempted_by = ARRAY[?::text] WHERE id = ?`
	}
	if n, err := st.DB().Exec(context.Background(), q, attempt, by, id); err != nil || n != 1 {
		t.Fatalf("mark job %d running: n=%d err=%v", id, n, err)
	}
}

func jobState(t *testing.T, st *queue.Store, id int64) string {
	t.Helper()
	rows, err := st.DB().Query(context.Background(), `SELECT state FROM river_job WHERE id = ?`, id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var s string
	if !rows.Next() {
		t.Fatalf("job %d not found", id)
	}
	if err := rows.Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRescueOnce hands back the jobs of dead workers: by process on this host (pid and start
// time), and by heartbeat on any host once deadAfter is given, never the caller's own jobs,
// never twice.
func TestRescueOnce(t *testing.T) {
	t.Parallel()
	self, err := queue.Self()
	if err != nil {
		t.Fatal(err)
	}
	// Same pid, other start time: what a reused pid looks like. It must count as dead.
	reused := queue.Identity{Host: self.Host, PIDNS: self.PIDNS, PID: self.PID, StartTime: self.StartTime + 1}
	other := queue.Identity{Host: self.Host + "-elsewhere", PIDNS: self.PIDNS, PID: 1, StartTime: 1}
	silent := queue.Identity{Host: self.Host + "-silent", PIDNS: self.PIDNS, PID: 2, StartTime: 2}
	// A worker of this host in another PID namespace (a container, unshare --pid) whose pid and
	// start time name no process here: /proc cannot judge it; only its heartbeat can.
	otherNS := queue.Identity{Host: self.Host, PIDNS: self.PIDNS + 1, PID: self.PID, StartTime: self.StartTime + 1}
	silentNS := queue.Identity{Host: self.Host, PIDNS: self.PIDNS + 2, PID: self.PID, StartTime: self.StartTime + 2}
	// beat: the heartbeat of the worker row to insert: "" none, "fresh", "old" (a minute ago).
	tests := []struct {
		name    string
		by      string
		beat    string
		attempt int
		want    string // after a pass without heartbeat recovery
		wantHB  string // after a second pass with it (deadAfter 10 s)
	}{
		{"live worker keeps its job", self.String(), "old", 1, "running", "running"},
		{"dead worker (pid reused) hands back", reused.String(), "", 1, "available", "available"},
		{"attempts exhausted: discarded", reused.String(), "", queue.DefaultMaxAttempts, "discarded", "discarded"},
		{"other host, fresh heartbeat: kept", other.String(), "fresh", 1, "running", "running"},
		{"other host, silent: handed back by heartbeat", silent.String(), "old", 1, "running", "available"},
		{"foreign client id left alone", "some-other-client", "", 1, "running", "running"},
		{"earlier id format (no pid namespace) left to River", self.Host + "/1/1", "", 1, "running", "running"},
		{"other pid namespace, fresh heartbeat: kept", otherNS.String(), "fresh", 1, "running", "running"},
		{"other pid namespace, silent: handed back by heartbeat", silentNS.String(), "old", 1, "running", "available"},
	}
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			st := open(t, database(t, engine))
			ctx := context.Background()
			ids, err := st.EnqueueChecks(ctx, queue.Split(proxies(len(tests)), "l", 1), queue.CheckOptions{})
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now().UnixMilli()
			for i, tt := range tests {
				markRunning(t, st, ids[i], tt.attempt, tt.by)
				if tt.beat == "" {
					continue
				}
				at := now
				if tt.beat == "old" {
					at = now - time.Minute.Milliseconds()
				}
				if _, err := st.DB().Exec(ctx, `INSERT INTO proxyline_worker (id, host, pid, started_at, heartbeat_at, concurrency, backend, layers)
					VALUES (?, 'h', 1, 0, ?, 1, 'inprocess', '') ON CONFLICT (id) DO NOTHING`, tt.by, at); err != nil {
					t.Fatal(err)
				}
			}
			moved, err := st.RescueOnce(ctx, self, 0)
			if err != nil {
				t.Fatal(err)
			}
			for i, tt := range tests {
				if got := jobState(t, st, ids[i]); got != tt.want {
					t.Errorf("%s: state %s, want %s", tt.name, got, tt.want)
				}
			}
			if len(moved) != 2 {
				t.Errorf("moved %v, want 2 jobs", moved)
			}
			moved, err = st.RescueOnce(ctx, self, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			for i, tt := range tests {
				if got := jobState(t, st, ids[i]); got != tt.wantHB {
					t.Errorf("%s (heartbeat recovery): state %s, want %s", tt.name, got, tt.wantHB)
				}
			}
			if len(moved) != 2 || moved[0].Reason != "heartbeat stale" || moved[1].Reason != "heartbeat stale" {
				t.Errorf("heartbeat pass moved %+v, want the silent workers' jobs", moved)
			}
			// A third pass (another worker's rescuer) finds nothing to move: the update is guarded.
			again, err := st.RescueOnce(ctx, self, 10*time.Second)
			if err != nil || len(again) != 0 {
				t.Errorf("third rescue moved %v, err %v", again, err)
			}
		})
	}
}

func TestPoolRecordIsIdempotent(t *testing.T) {
	t.Parallel()
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			st := open(t, database(t, engine))
			ctx := context.Background()
			now := time.Now().UTC().Truncate(time.Millisecond)
			given := []proxy.Proxy{
				{Scheme: proxy.HTTP, Host: "127.0.0.9", Port: 1},
				{Scheme: proxy.Unknown, Host: "127.0.0.9", Port: 2},
			}
			mk := func(at time.Time, class check.Class) []pool.Check {
				var cs []pool.Check
				for _, g := range given {
					r := check.Result{Proxy: g, Class: class, CheckedAt: at, Total: 5 * time.Millisecond}
					if class == check.Alive && g.Scheme == proxy.Unknown {
						r.Proxy.Scheme = proxy.SOCKS5
					}
					cs = append(cs, pool.Check{Given: g, Result: r})
				}
				return cs
			}
			// Job 1 runs twice (a re-run after a crash), then job 2 checks again later, then a
			// late result of an old job arrives: it must not replace the newer one.
			steps := []struct {
				job   int64
				at    time.Time
				class check.Class
			}{
				{1, now, check.Timeout},
				{1, now.Add(time.Second), check.Alive},
				{2, now.Add(2 * time.Second), check.Alive},
				{3, now.Add(-time.Hour), check.Refused},
			}
			for _, s := range steps {
				if err := pool.Record(ctx, st.DB(), pool.Source{JobID: s.job, Attempt: 1, Worker: "w"}, mk(s.at, s.class)); err != nil {
					t.Fatal(err)
				}
			}
			stats, err := pool.Count(ctx, st.DB())
			if err != nil {
				t.Fatal(err)
			}
			if stats.Total != 2 || stats.Alive != 2 || stats.History != 6 {
				t.Errorf("stats = %+v, want 2 current rows (both alive) and 6 history rows", stats)
			}
			if stats.ByProtocol["socks5"] != 1 || stats.ByProtocol["http"] != 1 {
				t.Errorf("alive by protocol = %v", stats.ByProtocol)
			}
			es, err := pool.List(ctx, st.DB(), false)
			if err != nil {
				t.Fatal(err)
			}
			if len(es) != 2 {
				t.Fatalf("live entries = %+v", es)
			}
			for _, e := range es {
				if e.JobID != 2 || !e.CheckedAt.Equal(now.Add(2*time.Second)) {
					t.Errorf("entry %+v: want job 2's result", e)
				}
				if !strings.Contains(e.Proxy, "://") {
					t.Errorf("entry proxy %q has no scheme", e.Proxy)
				}
			}
		})
	}
}

func TestUIServesJobs(t *testing.T) {
	t.Parallel()
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			st := open(t, database(t, engine))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if _, err := st.EnqueueChecks(ctx, queue.Split(proxies(3), "l", 1), queue.CheckOptions{Judge: "http://127.0.0.2/"}); err != nil {
				t.Fatal(err)
			}
			h, err := st.UI(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(h)
			defer srv.Close()
			for _, tc := range []struct{ path, want string }{
				{"/", "<html"},
				{"/api/jobs?state=available&limit=10", `"kind":"check"`},
			} {
				resp, err := srv.Client().Get(srv.URL + tc.path)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || !strings.Contains(string(body), tc.want) {
					t.Errorf("GET %s: %d, body lacks %q: %.300s", tc.path, resp.StatusCode, tc.want, body)
				}
			}
		})
	}
}
