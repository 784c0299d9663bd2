package run

import (
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/internal/pool"
	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/proxy"
)

// clock is a test clock the scheduler reads.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time          { return c.now }
func (c *clock) advance(d time.Duration) { c.now = c.now.Add(d) }
func openStore(t *testing.T, path string) *queue.Store {
	t.Helper()
	st, err := queue.Open(t.Context(), queue.Config{Database: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return st
}

var testBackoff = pool.Backoff{Interval: 10 * time.Minute, Base: time.Minute, Factor: 2, Max: 8 * time.Minute}

func newTestScheduler(t *testing.T, st *queue.Store, c *clock) *Scheduler {
	t.Helper()
	s, err := NewScheduler(SchedulerConfig{Store: st, Backoff: testBackoff, Chunk: 2, Batch: 100, Lease: time.Hour,
		MaxWaiting: 1000, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// jobs returns the check jobs waiting, by id, with their proxies.
func jobs(t *testing.T, st *queue.Store) map[int64][]string {
	t.Helper()
	rows, err := st.DB().Query(t.Context(), `SELECT id, json(args) FROM river_job WHERE state = 'available' ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[int64][]string{}
	for rows.Next() {
		var id int64
		var args []byte
		if err := rows.Scan(&id, &args); err != nil {
			t.Fatal(err)
		}
		var a queue.CheckArgs
		if err := json.Unmarshal(args, &a); err != nil {
			t.Fatal(err)
		}
		out[id] = a.Proxies
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// complete plays a worker: every waiting job's proxies get a result (alive when alive says so)
// checked at the clock's time, and the job is completed.
func complete(t *testing.T, st *queue.Store, c *clock, alive func(string) bool) int {
	t.Helper()
	n := 0
	for id, ps := range jobs(t, st) {
		var checks []pool.Check
		for _, s := range ps {
			p, err := proxy.Parse(s)
			if err != nil {
				t.Fatal(err)
			}
			r := check.Result{Proxy: p, Class: check.Class("refused"), CheckedAt: c.now}
			if alive(s) {
				r.Class = check.Alive
			}
			checks = append(checks, pool.Check{Given: p, Result: r})
		}
		if err := pool.Record(t.Context(), st.DB(), pool.Source{JobID: id, Attempt: 1, Worker: "test"}, checks); err != nil {
			t.Fatal(err)
		}
		if _, err := st.DB().Exec(t.Context(), `UPDATE river_job SET state = 'completed', finalized_at = ? WHERE id = ?`, c.now, id); err != nil {
			t.Fatal(err)
		}
		n += len(ps)
	}
	return n
}

func candidates(t *testing.T, lines ...string) []proxy.Proxy {
	t.Helper()
	var out []proxy.Proxy
	for _, l := range lines {
		p, err := proxy.Parse(l)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func TestSchedulerNewFirstThenBackoffAndRecheck(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "q.db"))
	c := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s := newTestScheduler(t, st, c)
	ctx := t.Context()

	// An old pool proxy, adopted: due after its interval, i.e. at once here (checked long ago).
	if _, err := pool.ScheduleCandidates(ctx, st.DB(), candidates(t, "http://127.0.0.3:1")); err != nil {
		t.Fatal(err)
	}
	if _, err := st.DB().Exec(ctx, `UPDATE proxyline_schedule SET next_check_at = ?`, c.now.Add(-time.Hour).UnixMilli()); err != nil {
		t.Fatal(err)
	}
	// New candidates: due before it.
	if n, err := pool.ScheduleCandidates(ctx, st.DB(), candidates(t, "http://127.0.0.4:1", "socks5://127.0.0.5:1", "http://127.0.0.3:1")); err != nil || n != 2 {
		t.Fatalf("scheduled %d new candidates, err %v; want 2 (one was known)", n, err)
	}
	due, err := pool.DueChecks(ctx, st.DB(), c.now, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 3 || due[2].Addr != "127.0.0.3:1" {
		t.Fatalf("due order %+v: want the two new candidates first, then the old proxy", due)
	}

	r, err := s.Tick(ctx)
	if err != nil || r.Enqueued != 3 || r.Jobs != 2 {
		t.Fatalf("first tick %+v, %v: want 3 proxies in 2 jobs", r, err)
	}
	// Leased: a second tick enqueues nothing.
	if r, err := s.Tick(ctx); err != nil || r.Enqueued != 0 {
		t.Fatalf("second tick %+v, %v: want nothing (leased)", r, err)
	}
	alive := func(s string) bool { return s == "http://127.0.0.4:1" }
	if n := complete(t, st, c, alive); n != 3 {
		t.Fatalf("completed %d proxies, want 3", n)
	}
	if r, err := s.Tick(ctx); err != nil || r.Settled != 3 || r.Enqueued != 0 {
		t.Fatalf("settling tick %+v, %v: want 3 settled, nothing due", r, err)
	}
	want := func(addr string, next time.Time, streak int) {
		t.Helper()
		e, ok, err := pool.ScheduleOf(ctx, st.DB(), addr, "http")
		if addr == "127.0.0.5:1" {
			e, ok, err = pool.ScheduleOf(ctx, st.DB(), addr, "socks5")
		}
		if err != nil || !ok {
			t.Fatalf("schedule of %s: %v %v", addr, ok, err)
		}
		if !e.NextCheckAt.Equal(next) || e.FailStreak != streak || e.JobID != 0 {
			t.Errorf("schedule of %s: %+v; want next %s, streak %d, no job", addr, e, next, streak)
		}
	}
	t0 := c.now
	want("127.0.0.4:1", t0.Add(10*time.Minute), 0) // alive: the interval
	want("127.0.0.5:1", t0.Add(time.Minute), 1)    // dead: the base back-off
	want("127.0.0.3:1", t0.Add(time.Minute), 1)

	// The dead ones back off: 1, 2, 4, 8, 8 minutes; the live one is checked every 10 minutes.
	waits := []time.Duration{2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 8 * time.Minute}
	for i, w := range waits {
		e, _, _ := pool.ScheduleOf(ctx, st.DB(), "127.0.0.3:1", "http")
		c.advance(e.NextCheckAt.Sub(c.now)) // to the dead proxy's due time
		if r, err := s.Tick(ctx); err != nil || r.Enqueued == 0 {
			t.Fatalf("round %d: tick %+v, %v: want the dead proxies enqueued", i, r, err)
		}
		complete(t, st, c, alive)
		if _, err := s.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		e, _, _ = pool.ScheduleOf(ctx, st.DB(), "127.0.0.3:1", "http")
		if got := e.NextCheckAt.Sub(c.now); got != w || e.FailStreak != i+2 {
			t.Fatalf("round %d: dead proxy due in %s with streak %d; want %s, %d", i, got, e.FailStreak, w, i+2)
		}
	}
}

func TestSchedulerRestartResumes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	c := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	ctx := t.Context()
	st := openStore(t, path)
	if _, err := pool.ScheduleCandidates(ctx, st.DB(), candidates(t, "http://127.0.0.4:1", "http://127.0.0.6:1")); err != nil {
		t.Fatal(err)
	}
	s := newTestScheduler(t, st, c)
	if r, err := s.Tick(ctx); err != nil || r.Enqueued != 2 {
		t.Fatalf("tick %+v, %v", r, err)
	}
	complete(t, st, c, func(string) bool { return true })
	if _, err := s.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	st.Close()

	// A new process on the same database: nothing is due before the interval; then both are.
	st2 := openStore(t, path)
	s2 := newTestScheduler(t, st2, c)
	c.advance(9 * time.Minute)
	if r, err := s2.Tick(ctx); err != nil || r.Enqueued != 0 {
		t.Fatalf("after restart, before the interval: %+v, %v; want nothing due", r, err)
	}
	c.advance(time.Minute)
	if r, err := s2.Tick(ctx); err != nil || r.Enqueued != 2 {
		t.Fatalf("after restart, at the interval: %+v, %v; want both re-checked", r, err)
	}
	// Enqueued but not finished, then a restart: the lease keeps them from a second job.
	st2.Close()
	st3 := openStore(t, path)
	s3 := newTestScheduler(t, st3, c)
	if r, err := s3.Tick(ctx); err != nil || r.Enqueued != 0 {
		t.Fatalf("restart with jobs in flight: %+v, %v; want no second job", r, err)
	}
	// A job that never finishes: due again once the lease ends.
	c.advance(time.Hour)
	if r, err := s3.Tick(ctx); err != nil || r.Enqueued != 2 {
		t.Fatalf("after the lease: %+v, %v; want both enqueued again", r, err)
	}
}

func TestSchedulerHoldsBackWhenJobsWait(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "q.db"))
	c := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s, err := NewScheduler(SchedulerConfig{Store: st, Backoff: testBackoff, Chunk: 1, Batch: 2, MaxWaiting: 2, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.ScheduleCandidates(t.Context(), st.DB(),
		candidates(t, "http://127.0.0.4:1", "http://127.0.0.5:1", "http://127.0.0.6:1")); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Tick(t.Context()); err != nil || r.Enqueued != 2 {
		t.Fatalf("tick %+v, %v: want a batch of 2", r, err)
	}
	if r, err := s.Tick(t.Context()); err != nil || !r.Held || r.Enqueued != 0 {
		t.Fatalf("tick %+v, %v: want held back (2 jobs wait)", r, err)
	}
}

func TestSchedulerStartStop(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "q.db"))
	if _, err := pool.ScheduleCandidates(t.Context(), st.DB(), candidates(t, "http://127.0.0.4:1")); err != nil {
		t.Fatal(err)
	}
	s, err := NewScheduler(SchedulerConfig{Store: st, Backoff: testBackoff, Tick: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for len(jobs(t, st)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the running scheduler enqueued nothing in a minute")
		}
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err == nil {
		t.Fatal("Start after Stop succeeded")
	}
}

func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }
