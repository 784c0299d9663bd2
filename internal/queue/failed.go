package queue

import (
	"context"
	"fmt"
	"time"

	"github.com/proxyline/proxyline/internal/secret"
)

// FailedShown is how many of the most recent failed jobs Status lists.
const FailedShown = 5

// clockSkew is how far the clocks of the machines that finalize jobs may be behind the
// database's: River writes finalized_at with the worker's clock, and status --wait compares it
// with the database's clock at the start of the wait.
const clockSkew = time.Minute

// maxErrorText is how much of a failed job's last error Status shows.
const maxErrorText = 300

// FailedJob is a job that ended without completing: discarded (its attempts spent) or cancelled
// (by a user, or by a worker because its arguments cannot work).
type FailedJob struct {
	ID          int64     `json:"id"`
	Kind        string    `json:"kind"`
	State       string    `json:"state"` // "discarded" or "cancelled"
	Attempt     int       `json:"attempt"`
	MaxAttempts int       `json:"max_attempts"`
	FinalizedAt time.Time `json:"finalized_at"`
	Source      string    `json:"source,omitempty"` // the list and line of the chunk (check jobs)
	Error       string    `json:"error"`            // the last error, passwords masked, cut short
}

// WaitReport is what Store.Wait saw: whether the queue drained, and which jobs ended without
// completing while it waited.
type WaitReport struct {
	// Since is the database's clock when the wait began.
	Since   time.Time `json:"since"`
	Drained bool      `json:"drained"`
	// Discarded and Cancelled count the jobs that ended so since the wait began.
	Discarded int `json:"discarded"`
	Cancelled int `json:"cancelled"`
	// JobIDs lists them (at most 100), most recent first.
	JobIDs []int64 `json:"job_ids"`
}

// failedSQL selects failed jobs, most recent first: id, kind, state, attempt, max_attempts,
// finalized_at in Unix milliseconds, source, last error. Arguments: the least finalized_at in
// Unix milliseconds, the limit.
func (s *Store) failedSQL() string {
	if s.eng.dialect() == dialectPostgres {
		return `SELECT id, kind, state::text, attempt, max_attempts, (extract(epoch FROM finalized_at) * 1000)::bigint,
			coalesce(args->>'source', ''), coalesce(errors[array_upper(errors, 1)]->>'error', '')
			FROM river_job WHERE state IN ('discarded', 'cancelled') AND finalized_at >= to_timestamp(?::bigint / 1000.0)
			ORDER BY finalized_at DESC, id DESC LIMIT ?`
	}
	return `SELECT id, kind, state, attempt, max_attempts, CAST((julianday(finalized_at) - 2440587.5) * 86400000 AS INTEGER),
		coalesce(json_extract(args, '$.source'), ''), coalesce(json_extract(errors, '$[#-1].error'), '')
		FROM river_job WHERE state IN ('discarded', 'cancelled') AND finalized_at >= strftime('%Y-%m-%d %H:%M:%f', ? / 1000.0, 'unixepoch')
		ORDER BY finalized_at DESC, id DESC LIMIT ?`
}

// failedJobs returns up to limit jobs finalized as discarded or cancelled at or after since.
func (s *Store) failedJobs(ctx context.Context, since time.Time, limit int) ([]FailedJob, error) {
	rows, err := s.eng.db().Query(ctx, s.failedSQL(), since.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("list failed jobs: %w", err)
	}
	defer rows.Close()
	out := []FailedJob{}
	for rows.Next() {
		var j FailedJob
		var ms int64
		if err := rows.Scan(&j.ID, &j.Kind, &j.State, &j.Attempt, &j.MaxAttempts, &ms, &j.Source, &j.Error); err != nil {
			return nil, fmt.Errorf("list failed jobs: %w", err)
		}
		j.FinalizedAt = time.UnixMilli(ms).UTC()
		j.Error = cutText(secret.Redact(j.Error), maxErrorText)
		out = append(out, j)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list failed jobs: %w", err)
	}
	return out, nil
}

// dbNow reads the database's clock.
func (s *Store) dbNow(ctx context.Context) (time.Time, error) {
	q := `SELECT CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)`
	if s.eng.dialect() == dialectPostgres {
		q = `SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint`
	}
	rows, err := s.eng.db().Query(ctx, q)
	if err != nil {
		return time.Time{}, fmt.Errorf("read the database's clock: %w", err)
	}
	defer rows.Close()
	var ms int64
	if !rows.Next() {
		return time.Time{}, fmt.Errorf("read the database's clock: no row: %w", rows.Err())
	}
	if err := rows.Scan(&ms); err != nil {
		return time.Time{}, fmt.Errorf("read the database's clock: %w", err)
	}
	return time.UnixMilli(ms).UTC(), nil
}

// waitMark is the start of a wait: the database's time, and the jobs that had already failed
// within clockSkew before it (so that a job finalized by a machine whose clock is behind is not
// missed, and one that failed before the wait is not counted).
type waitMark struct {
	since  time.Time
	before map[int64]bool
}

const maxWaitIDs = 100

func (s *Store) markWait(ctx context.Context) (waitMark, error) {
	now, err := s.dbNow(ctx)
	if err != nil {
		return waitMark{}, err
	}
	m := waitMark{since: now, before: map[int64]bool{}}
	early, err := s.failedJobs(ctx, now.Add(-clockSkew), 1<<20)
	if err != nil {
		return waitMark{}, err
	}
	for _, j := range early {
		m.before[j.ID] = true
	}
	return m, nil
}

// failedSince reports the jobs that failed since the mark.
func (s *Store) failedSince(ctx context.Context, m waitMark) (*WaitReport, error) {
	js, err := s.failedJobs(ctx, m.since.Add(-clockSkew), 1<<20)
	if err != nil {
		return nil, err
	}
	r := &WaitReport{Since: m.since, JobIDs: []int64{}}
	for _, j := range js {
		if m.before[j.ID] {
			continue
		}
		if j.State == "discarded" {
			r.Discarded++
		} else {
			r.Cancelled++
		}
		if len(r.JobIDs) < maxWaitIDs {
			r.JobIDs = append(r.JobIDs, j.ID)
		}
	}
	return r, nil
}

// cutText shortens s to at most n bytes, marking the cut, without splitting a UTF-8 sequence.
func cutText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}
