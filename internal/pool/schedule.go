package pool

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/proxy"
)

// The schedule of `proxyline run` (table proxyline_schedule, migration 5): one row per proxy
// with the time of its next check, so that a restart resumes where the last run stopped.
//
//   - A new candidate is due at time 0: before every re-check, in the order it came.
//   - When its check job is enqueued, the row takes the job's id and is leased until a time far
//     beyond the job's run (Lease): it is not enqueued again meanwhile.
//   - When the job has finished and its result is in the history, Settle reads it: an alive proxy is due again
//     Interval after its check, a failed one after the back-off (Base, times Factor for each
//     failure in a row, at most Max), and the job id is cleared.
//   - A job that never writes a result (discarded after its attempts) leaves the row to its
//     lease: it falls due again when the lease ends.

// Due is a proxy whose check is due.
type Due struct {
	Addr, Scheme string
	Proxy        string // as given to the queue: scheme://[user:pass@]host:port or host:port
	NextCheckAt  int64  // Unix milliseconds; 0 for a new candidate
}

// Backoff says when a checked proxy is due again.
type Backoff struct {
	Interval time.Duration // after an alive result
	Base     time.Duration // after the first failure in a row
	Factor   float64       // each further failure in a row multiplies the wait by it
	Max      time.Duration // the longest wait after failures
}

// Next returns when a proxy checked at `at` is due again: Interval after it if alive, else the
// back-off for `streak` failures in a row (streak >= 1).
func (b Backoff) Next(at time.Time, alive bool, streak int) time.Time {
	if alive {
		return at.Add(b.Interval)
	}
	return at.Add(b.wait(streak))
}

func (b Backoff) wait(streak int) time.Duration {
	w := float64(b.Base) * math.Pow(max(b.Factor, 1), float64(max(streak, 1)-1))
	if w >= float64(b.Max) || math.IsInf(w, 0) || math.IsNaN(w) {
		return b.Max
	}
	return time.Duration(w)
}

// ScheduleCandidates adds proxies to the schedule as new candidates, due at once (before every
// re-check). A proxy already scheduled keeps its schedule (a dead one its back-off). It returns
// how many were new.
func ScheduleCandidates(ctx context.Context, db DB, ps []proxy.Proxy) (int64, error) {
	var added int64
	for i := 0; i < len(ps); i += batchRows {
		part := ps[i:min(i+batchRows, len(ps))]
		var b strings.Builder
		args := make([]any, 0, len(part)*3)
		b.WriteString(`INSERT INTO proxyline_schedule (addr, scheme, proxy, next_check_at, fail_streak, job_id, checked_at) VALUES `)
		for j, p := range part {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString("(?, ?, ?, 0, 0, 0, 0)")
			args = append(args, p.Addr(), string(p.Scheme), p.String())
		}
		b.WriteString(` ON CONFLICT (addr, scheme) DO NOTHING`)
		n, err := db.Exec(ctx, b.String(), args...)
		if err != nil {
			return added, fmt.Errorf("schedule %d candidates: %w", len(part), err)
		}
		added += n
	}
	return added, nil
}

// AdoptPool schedules the pool's proxies that have no schedule yet (checked by `enqueue` and
// `worker`, or before the schedule existed): each is due its interval or base back-off after its
// last check. It returns how many it added.
func AdoptPool(ctx context.Context, db DB, b Backoff) (int64, error) {
	n, err := db.Exec(ctx, `INSERT INTO proxyline_schedule (addr, scheme, proxy, next_check_at, fail_streak, job_id, checked_at)
		SELECT addr, scheme, proxy, CASE WHEN class = ? THEN checked_at + ? ELSE checked_at + ? END,
			CASE WHEN class = ? THEN 0 ELSE 1 END, 0, checked_at
		FROM proxyline_proxy WHERE true
		ON CONFLICT (addr, scheme) DO NOTHING`,
		string(check.Alive), b.Interval.Milliseconds(), b.wait(1).Milliseconds(), string(check.Alive))
	if err != nil {
		return 0, fmt.Errorf("adopt the pool into the schedule: %w", err)
	}
	return n, nil
}

// DueChecks returns at most limit proxies due at now, the earliest first (new candidates before
// every re-check). It walks the index proxyline_schedule_due to its limit.
func DueChecks(ctx context.Context, db DB, now time.Time, limit int) ([]Due, error) {
	rows, err := db.Query(ctx, `SELECT addr, scheme, proxy, next_check_at FROM proxyline_schedule
		WHERE next_check_at <= ? ORDER BY next_check_at LIMIT ?`, now.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("due checks: %w", err)
	}
	defer rows.Close()
	var out []Due
	for rows.Next() {
		var d Due
		if err := rows.Scan(&d.Addr, &d.Scheme, &d.Proxy, &d.NextCheckAt); err != nil {
			return nil, fmt.Errorf("due checks: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("due checks: %w", err)
	}
	return out, nil
}

// MarkEnqueued records that the proxies of ds were enqueued in job: none is due again before
// leaseUntil unless Settle finds the job's result first. Run it in the transaction that inserts
// the job, so a crash leaves both or neither.
func MarkEnqueued(ctx context.Context, db DB, ds []Due, job int64, leaseUntil time.Time) error {
	// One statement per proxy, each a primary-key lookup: a row-value IN list of pairs is not
	// an index lookup on SQLite (measured: 10,000 proxies took 4.6 s at a million, the database
	// locked all along).
	for _, d := range ds {
		if _, err := db.Exec(ctx, `UPDATE proxyline_schedule SET job_id = ?, next_check_at = ? WHERE addr = ? AND scheme = ?`,
			job, leaseUntil.UnixMilli(), d.Addr, d.Scheme); err != nil {
			return fmt.Errorf("mark %s enqueued in job %d: %w", d.Addr, job, err)
		}
	}
	return nil
}

// settled is one result Settle reads.
type settled struct {
	addr, scheme, class string
	job, checkedAt      int64
	totalMS             int64
	streak              int
}

// Settled is one check result Settle scheduled from: what the metrics of a process that did not
// run the check itself (`proxyline run` with worker processes) count.
type Settled struct {
	Scheme, Class string
	Total         time.Duration
}

// InFlightJobs returns the distinct check jobs the schedule waits for (a walk of the partial
// index proxyline_schedule_inflight).
func InFlightJobs(ctx context.Context, db DB) ([]int64, error) {
	rows, err := db.Query(ctx, `SELECT DISTINCT job_id FROM proxyline_schedule WHERE job_id > 0`)
	if err != nil {
		return nil, fmt.Errorf("jobs in flight: %w", err)
	}
	var out []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("jobs in flight: %w", err)
		}
		out = append(out, id)
	}
	if err := errorsOf(rows); err != nil {
		return nil, fmt.Errorf("jobs in flight: %w", err)
	}
	return out, nil
}

// Settle reads the results the check jobs in jobs wrote (jobs that finished: the caller asks
// the queue which) and schedules each of their proxies' next check by b. A proxy of those jobs
// without a result (a job discarded) keeps its lease. It returns the results it settled from.
// Run it in a transaction.
func Settle(ctx context.Context, db DB, b Backoff, jobs []int64) ([]Settled, error) {
	var done []settled
	for i := 0; i < len(jobs); i += batchRows {
		part := jobs[i:min(i+batchRows, len(jobs))]
		args := make([]any, len(part))
		for j, id := range part {
			args[j] = id
		}
		rows, err := db.Query(ctx, `SELECT s.addr, s.scheme, s.job_id, s.fail_streak, c.class, c.checked_at, c.total_ms
			FROM proxyline_schedule s JOIN proxyline_check c ON c.job_id = s.job_id AND c.addr = s.addr AND c.scheme = s.scheme
			WHERE s.job_id > 0 AND s.job_id IN (?`+strings.Repeat(", ?", len(part)-1)+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("settle checks: %w", err)
		}
		for rows.Next() {
			var x settled
			if err := rows.Scan(&x.addr, &x.scheme, &x.job, &x.streak, &x.class, &x.checkedAt, &x.totalMS); err != nil {
				rows.Close()
				return nil, fmt.Errorf("settle checks: %w", err)
			}
			done = append(done, x)
		}
		if err := errorsOf(rows); err != nil {
			return nil, fmt.Errorf("settle checks: %w", err)
		}
	}
	out := make([]Settled, 0, len(done))
	for _, x := range done {
		alive := x.class == string(check.Alive)
		streak := 0
		if !alive {
			streak = x.streak + 1
		}
		next := b.Next(time.UnixMilli(x.checkedAt), alive, streak)
		if _, err := db.Exec(ctx, `UPDATE proxyline_schedule SET job_id = 0, fail_streak = ?, next_check_at = ?, checked_at = ?
			WHERE addr = ? AND scheme = ? AND job_id = ?`, streak, next.UnixMilli(), x.checkedAt, x.addr, x.scheme, x.job); err != nil {
			return nil, fmt.Errorf("settle check of %s: %w", x.addr, err)
		}
		out = append(out, Settled{Scheme: x.scheme, Class: x.class, Total: time.Duration(x.totalMS) * time.Millisecond})
	}
	return out, nil
}

// errorsOf closes rows and returns the iteration's error, else the close's.
func errorsOf(rows Rows) error {
	err := rows.Err()
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	return err
}

// ScheduleEntry is one proxy's schedule, for status and tests.
type ScheduleEntry struct {
	Addr, Scheme string
	NextCheckAt  time.Time
	FailStreak   int
	JobID        int64
}

// ScheduleOf returns the schedule of one proxy (addr and the scheme it was given with); ok is
// false when it has none.
func ScheduleOf(ctx context.Context, db DB, addr, scheme string) (e ScheduleEntry, ok bool, err error) {
	rows, err := db.Query(ctx, `SELECT next_check_at, fail_streak, job_id FROM proxyline_schedule WHERE addr = ? AND scheme = ?`, addr, scheme)
	if err != nil {
		return e, false, fmt.Errorf("schedule of %s: %w", addr, err)
	}
	defer rows.Close()
	if !rows.Next() {
		return e, false, rows.Err()
	}
	var next int64
	if err := rows.Scan(&next, &e.FailStreak, &e.JobID); err != nil {
		return e, false, fmt.Errorf("schedule of %s: %w", addr, err)
	}
	e.Addr, e.Scheme, e.NextCheckAt = addr, scheme, time.UnixMilli(next)
	return e, true, nil
}
