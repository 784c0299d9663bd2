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
	// WorkersAlive counts the workers whose heartbeat is fresh (and, on this host, whose
	// process lives).
	WorkersAlive int `json:"workers_alive"`
	// SupervisionHere lists the supervision layers this machine allows a worker started here
	// (filled by the status command from supervise.Detect; Status leaves it empty).
	SupervisionHere []string `json:"supervision_here"`
}

// WorkerStatus is a registered worker and whether it is alive.
type WorkerStatus struct {
	WorkerRow
	Alive      bool  `json:"alive"`
	Local      bool  `json:"local"` // on this host: liveness verified by pid and start time
	RunningJob int64 `json:"running_jobs"`
}

// HeartbeatStale is the age after which a worker of another host counts as dead in status.
const HeartbeatStale = 10 * time.Second

// Status reads the queue's and pool's counts.
func (s *Store) Status(ctx context.Context) (*Status, error) {
	st := &Status{Engine: s.engine, Database: s.name, Time: time.Now().UTC(), Jobs: map[string]int64{}, JobsByKind: map[string]int64{}}
	for _, k := range jobStates {
		st.Jobs[k] = 0
	}
	db := s.eng.db()
	rows, err := db.Query(ctx, `SELECT state, kind, count(*) FROM river_job GROUP BY state, kind`)
	if err != nil {
		return nil, fmt.Errorf("count jobs: %w", err)
	}
	for rows.Next() {
		var state, kind string
		var n int64
		if err := rows.Scan(&state, &kind, &n); err != nil {
			rows.Close()
			return nil, fmt.Errorf("count jobs: %w", err)
		}
		st.Jobs[state] += n
		st.JobsByKind[kind] += n
	}
	if err := rows.Err(); err != nil {
		rows.Close()
		return nil, fmt.Errorf("count jobs: %w", err)
	}
	rows.Close()
	for _, k := range unfinished {
		st.Unfinished += st.Jobs[k]
	}
	if st.Pool, err = pool.Count(ctx, db); err != nil {
		return nil, err
	}
	running, err := s.runningByWorker(ctx)
	if err != nil {
		return nil, err
	}
	ws, err := s.workerRows(ctx)
	if err != nil {
		return nil, err
	}
	host := ""
	if self, err := Self(); err == nil {
		host = self.Host
	}
	for _, w := range ws {
		ws := WorkerStatus{WorkerRow: w, RunningJob: running[w.ID]}
		ws.Alive = time.Since(w.HeartbeatAt) < HeartbeatStale
		if id, err := ParseIdentity(w.ID); err == nil && id.Host == host {
			ws.Local = true
			alive, err := id.Alive()
			ws.Alive = err == nil && alive
		}
		if ws.Alive {
			st.WorkersAlive++
		}
		st.Workers = append(st.Workers, ws)
	}
	return st, nil
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
// ctx ends first it returns ctx's error with the Status at that moment (read without ctx).
func (s *Store) Wait(ctx context.Context, interval time.Duration) (*Status, error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := s.Unfinished(ctx)
		if err != nil && ctx.Err() == nil {
			return nil, err
		}
		if err == nil && n == 0 {
			return s.Status(ctx)
		}
		select {
		case <-ctx.Done():
		case <-t.C:
			continue
		}
		st, err := s.Status(context.WithoutCancel(ctx))
		if err != nil {
			return nil, err
		}
		return st, ctx.Err()
	}
}
