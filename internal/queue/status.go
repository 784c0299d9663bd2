package queue

import (
	"context"
	"fmt"
	"time"

	"github.com/proxyline/proxyline/internal/pool"
)

// River's job states, in the order status prints them.
var jobStates = []string{"available", "scheduled", "pending", "retryable", "running", "completed", "cancelled", "discarded"}

// unfinished are the states of a job that is still to run or running.
var unfinished = []string{"available", "scheduled", "pending", "retryable", "running"}

// Status is a snapshot of the queue and the pool. Its JSON form is documented in docs/queue.md
// and read by scripts and killtest: add fields, never rename or remove one.
type Status struct {
	Engine     string           `json:"engine"`
	Database   string           `json:"database"`
	Time       time.Time        `json:"time"`
	Jobs       map[string]int64 `json:"jobs"` // every River state, zero included
	JobsByKind map[string]int64 `json:"jobs_by_kind"`
	// Unfinished counts available+scheduled+pending+retryable+running: status --wait waits for 0.
	Unfinished int64          `json:"unfinished"`
	Pool       pool.Stats     `json:"pool"`
	Workers    []WorkerStatus `json:"workers"`
	// WorkersAlive counts the workers in state alive.
	WorkersAlive int `json:"workers_alive"`
	// SupervisionHere lists the supervision layers this machine allows a worker started here
	// (filled by status --layers from supervise.Detect; Status leaves it empty).
	SupervisionHere []string `json:"supervision_here"`
	// LayersProbed says whether SupervisionHere was probed (status --layers): [] then means none.
	LayersProbed bool `json:"layers_probed"`
	// Failed lists the FailedShown most recent jobs that ended without completing (discarded
	// or cancelled), with their last error; Jobs counts them all.
	Failed []FailedJob `json:"failed"`
	// Wait is set by Wait: did the queue drain, and which jobs failed meanwhile.
	Wait *WaitReport `json:"wait,omitempty"`
	// Sources is the yield of each source that named proxies (scrape --enqueue), best first.
	Sources []pool.SourceYield `json:"sources"`
}

// WorkerStatus is a registered worker and what state it is in.
type WorkerStatus struct {
	WorkerRow
	// State is one of the Worker* states.
	State string `json:"state"`
	Alive bool   `json:"alive"` // State == WorkerAlive
	Local bool   `json:"local"` // on this host: process state read from /proc (pid and start time)
	// HeartbeatAgeMS is the heartbeat's age by the database's clock, in milliseconds.
	HeartbeatAgeMS int64 `json:"heartbeat_age_ms"`
	RunningJob     int64 `json:"running_jobs"`
}

// Worker states in status.
const (
	WorkerAlive   = "alive"   // heartbeat fresh; on this host, the process runs
	WorkerStopped = "stopped" // this host: the process is stopped (SIGSTOP, or a debugger)
	WorkerStale   = "stale"   // heartbeat older than HeartbeatStale: its jobs are being handed back
	WorkerDead    = "dead"    // this host: the process is gone
)

// HeartbeatStale is the heartbeat age after which status calls a worker stale: the default
// dead-after bound, after which other workers hand back its jobs.
const HeartbeatStale = DefaultDeadAfter

// Status reads the queue's and pool's counts.
func (s *Store) Status(ctx context.Context) (*Status, error) {
	st := &Status{Engine: s.engine, Database: s.name, Time: time.Now().UTC(), Jobs: map[string]int64{}, JobsByKind: map[string]int64{},
		Workers: []WorkerStatus{}, SupervisionHere: []string{}}
	for _, k := range jobStates {
		st.Jobs[k] = 0
	}
	db := s.eng.db()
	// Two counts, each read from one of River's indexes (state first in the fetching index; the
	// kind index), rather than a GROUP BY of both that reads every job row.
	if err := countJobs(ctx, db, `SELECT state, count(*) FROM river_job GROUP BY state`, st.Jobs); err != nil {
		return nil, err
	}
	if err := countJobs(ctx, db, `SELECT kind, count(*) FROM river_job GROUP BY kind`, st.JobsByKind); err != nil {
		return nil, err
	}
	for _, k := range unfinished {
		st.Unfinished += st.Jobs[k]
	}
	var err error
	if st.Pool, err = pool.Count(ctx, db); err != nil {
		return nil, err
	}
	if st.Failed, err = s.failedJobs(ctx, time.Unix(0, 0), FailedShown); err != nil {
		return nil, err
	}
	if st.Sources, err = pool.SourceYields(ctx, db); err != nil {
		return nil, err
	}
	if st.Sources == nil {
		st.Sources = []pool.SourceYield{}
	}
	if err := s.workerStatuses(ctx, st); err != nil {
		return nil, err
	}
	return st, nil
}

// countJobs adds the (key, count) rows of q to into.
func countJobs(ctx context.Context, db pool.DB, q string, into map[string]int64) error {
	rows, err := db.Query(ctx, q)
	if err != nil {
		return fmt.Errorf("count jobs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		var n int64
		if err := rows.Scan(&k, &n); err != nil {
			return fmt.Errorf("count jobs: %w", err)
		}
		into[k] += n
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("count jobs: %w", err)
	}
	return nil
}

// runningByWorker counts running jobs by the client that last attempted them.
func (s *Store) runningByWorker(ctx context.Context) (map[string]int64, error) {
	q := `SELECT json_extract(attempted_by, '$[#-1]'), count(*) FROM river_job WHERE state = 'running' GROUP BY 1`
	if s.eng.dialect() == dialectPostgres {
		q = `SELECT attempted_by[array_upper(attempted_by, 1)], count(*) FROM river_job WHERE state = 'running' GROUP BY 1`
	}
	rows, err := s.eng.db().Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("count running jobs: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var by *string
		var n int64
		if err := rows.Scan(&by, &n); err != nil {
			return nil, fmt.Errorf("count running jobs: %w", err)
		}
		if by != nil {
			out[*by] = n
		}
	}
	return out, rows.Err()
}

// Unfinished counts the jobs still to run or running: a cheap query, for polling.
func (s *Store) Unfinished(ctx context.Context) (int64, error) {
	rows, err := s.eng.db().Query(ctx, `SELECT count(*) FROM river_job
		WHERE state IN ('available', 'scheduled', 'pending', 'retryable', 'running')`)
	if err != nil {
		return 0, fmt.Errorf("count unfinished jobs: %w", err)
	}
	defer rows.Close()
	var n int64
	if rows.Next() {
		if err := rows.Scan(&n); err != nil {
			return 0, fmt.Errorf("count unfinished jobs: %w", err)
		}
	}
	return n, rows.Err()
}

// Wait polls Unfinished every interval until no job is unfinished, then returns the Status. When
// ctx ends first it returns ctx's error with the Status at that moment (read without ctx). Either
// way the Status's Wait reports whether the queue drained and which jobs failed (were discarded or
// cancelled) since the wait began, by the database's clock.
func (s *Store) Wait(ctx context.Context, interval time.Duration) (*Status, error) {
	mark, err := s.markWait(ctx)
	if err != nil {
		return nil, err
	}
	s.log.Debug("waiting for the queue to drain", "since", mark.since, "failed_before", len(mark.before))
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := s.Unfinished(ctx)
		if err != nil && ctx.Err() == nil {
			return nil, err
		}
		if err == nil && n == 0 {
			return s.waitStatus(ctx, mark, true)
		}
		select {
		case <-ctx.Done():
		case <-t.C:
			continue
		}
		st, err := s.waitStatus(context.WithoutCancel(ctx), mark, false)
		if err != nil {
			return nil, err
		}
		return st, ctx.Err()
	}
}

// waitStatus is the Status at the end of a wait, with its WaitReport.
func (s *Store) waitStatus(ctx context.Context, mark waitMark, drained bool) (*Status, error) {
	st, err := s.Status(ctx)
	if err != nil {
		return nil, err
	}
	if st.Wait, err = s.failedSince(ctx, mark); err != nil {
		return nil, err
	}
	st.Wait.Drained = drained
	return st, nil
}

// workerStatuses fills the workers, each with its running job and state, and the alive count.
func (s *Store) workerStatuses(ctx context.Context, st *Status) error {
	running, err := s.runningByWorker(ctx)
	if err != nil {
		return err
	}
	ws, err := s.workerRows(ctx)
	if err != nil {
		return err
	}
	self, selfErr := Self()
	for _, w := range ws {
		ws := workerStatus(w, running[w.ID], self, selfErr == nil)
		if ws.Alive {
			st.WorkersAlive++
		}
		st.Workers = append(st.Workers, ws)
	}
	return nil
}

// workerStatus judges one worker: stale by its heartbeat's age, and, when it is local to self
// (this host and PID namespace, known when haveSelf), dead or stopped by its process.
func workerStatus(w WorkerRow, running int64, self Identity, haveSelf bool) WorkerStatus {
	ws := WorkerStatus{WorkerRow: w, RunningJob: running, HeartbeatAgeMS: w.HeartbeatAge.Milliseconds()}
	ws.State = WorkerAlive
	if w.HeartbeatAge >= HeartbeatStale {
		ws.State = WorkerStale
	}
	if id, err := ParseIdentity(w.ID); err == nil && haveSelf && id.Local(self) {
		ws.Local = true
		switch ps, err := id.State(); {
		case err != nil:
		case ps == ProcessGone:
			ws.State = WorkerDead
		case ps == ProcessStopped:
			ws.State = WorkerStopped
		}
	}
	ws.Alive = ws.State == WorkerAlive
	return ws
}
