package run

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/pool"
	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/internal/testdb"
)

// BenchmarkSchedule fills the schedule with PROXYLINE_BENCH_PROXIES proxies (default 1,000,000)
// whose next checks are spread over ±12 hours around now (half of them due), once per engine (a SQLite file; a fresh PostgreSQL schema), then times the
// scheduler's queries: the due query (a batch of 1000, the earliest first) and settling
// (which of the jobs in flight finished: none here, so it is the cost of looking; the first
// settle, which reads the jobs in flight from the schedule, is logged apart). In flight: 1 % of the proxies (10,000 of a million) in 200 jobs of 50,
// what max_waiting_jobs 200 and chunk 50 allow.
//
//	go test -run '^$' -bench Schedule -benchtime 20x -timeout 30m ./internal/run/
func BenchmarkSchedule(b *testing.B) {
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("PROXYLINE_BENCH_PROXIES")); err == nil && v > 0 {
		n = v
	}
	now := time.Now()
	for _, engine := range testdb.Engines {
		b.Run(engine, func(b *testing.B) {
			db := testdb.Database(b, engine)
			ctx := context.Background()
			st, err := queue.Open(ctx, queue.Config{Database: db})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			start := time.Now()
			if err := fillSchedule(ctx, st, n, now); err != nil {
				b.Fatal(err)
			}
			b.Logf("%s: %d scheduled proxies generated in %v", engine, n, time.Since(start).Round(time.Second))
			b.Run("due_1000", func(b *testing.B) {
				for b.Loop() {
					due, err := pool.DueChecks(ctx, st.DB(), now, 1000)
					if err != nil || len(due) != 1000 {
						b.Fatal(len(due), err)
					}
				}
			})
			// 10,000 due proxies enqueued as the scheduler does (200 jobs of 50, one transaction).
			bo := pool.Backoff{Interval: time.Hour, Base: time.Minute, Factor: 2, Max: time.Hour}
			s, err := NewScheduler(SchedulerConfig{Store: st, Backoff: bo, Chunk: 50})
			if err != nil {
				b.Fatal(err)
			}
			due, err := pool.DueChecks(ctx, st.DB(), now, 10_000)
			if err != nil {
				b.Fatal(err)
			}
			enq := time.Now()
			if err := s.enqueue(ctx, due, now); err != nil {
				b.Fatal(err)
			}
			b.Logf("enqueue 10,000 due proxies in 200 jobs (one transaction): %v", time.Since(enq).Round(time.Millisecond))
			b.Run("settle_none", func(b *testing.B) {
				s, err := NewScheduler(SchedulerConfig{Store: st, Backoff: bo})
				if err != nil {
					b.Fatal(err)
				}
				first := time.Now()
				if _, err := s.settle(ctx); err != nil { // the first tick reads the jobs in flight from the schedule
					b.Fatal(err)
				}
				b.Logf("first settle (reads the jobs in flight from the schedule): %v", time.Since(first).Round(time.Millisecond))
				for b.Loop() {
					if n, err := s.settle(ctx); err != nil || n != 0 || len(s.inFlight) != 200 {
						b.Fatal(n, err, len(s.inFlight))
					}
				}
			})
		})
	}
}

// fillSchedule inserts n schedule rows in one statement.
func fillSchedule(ctx context.Context, st *queue.Store, n int, now time.Time) error {
	rows := `SELECT 'h' || i || ':8080', 'http', 'http://h' || i || ':8080', ? + (i * 7919) % 86400000 - 43200000, 0,
		0, 0`
	var q string
	if st.Engine() == queue.EngineSQLite {
		q = `WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ?)
			INSERT INTO proxyline_schedule (addr, scheme, proxy, next_check_at, fail_streak, job_id, checked_at) ` +
			rows + ` FROM s`
		_, err := st.DB().Exec(ctx, q, n, now.UnixMilli())
		return err
	}
	q = `INSERT INTO proxyline_schedule (addr, scheme, proxy, next_check_at, fail_streak, job_id, checked_at) ` +
		rows + ` FROM generate_series(1, ?::bigint) AS s(i)`
	if _, err := st.DB().Exec(ctx, q, now.UnixMilli(), n); err != nil {
		return err
	}
	// Statistics, as autovacuum would gather them on a table that grew this much.
	_, err := st.DB().Exec(ctx, `ANALYZE proxyline_schedule`)
	return err
}
