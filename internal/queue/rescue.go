package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// The rescuers. River's own rescuer returns a running job to the queue only when it has run
// longer than RescueStuckJobsAfter (6 min by default), because it cannot tell a dead worker from
// a slow one. We can, in two ways, and every worker runs both about every 500 ms:
//
//   - on one machine, by process: each River client's ID is the Identity of its process, River
//     writes it into the job's attempted_by when the job starts, and /proc says whether that
//     process (same pid AND same start time) still lives. A job of a dead process of this host
//     and of this PID namespace runs again within about a second. A worker of another PID
//     namespace (a container, `unshare --pid`) on the same host is not judged by /proc, whose
//     pids name other processes: its heartbeat decides, as for another machine.
//   - on any machine, by heartbeat: every worker refreshes its row in proxyline_worker every 2 s
//     with the database's clock; a job whose worker has not done so for DeadAfter (10 s by
//     default) is handed back. That covers a machine that died whole, and a worker that is
//     alive but not running (SIGSTOPped, swapped out, cut off from the database). On this host
//     /proc has the last word: a worker that exists and is not stopped keeps its jobs however
//     late its heartbeat (a busy machine delays heartbeats by seconds). Such a worker
//     may wake up: the fence (fence.go) keeps it from writing anything about the job since.
//
// Both hand a job back with one guarded UPDATE: only while it is still running the attempt seen,
// by the client seen, so two rescuers never both move a job, and a job a live worker picked up
// again meanwhile is never touched.

// rescueCandidate is a running job with the client that last fetched it, and whether that
// client's heartbeat is older than the bound asked (by the database's clock).
type rescueCandidate struct {
	id      int64
	attempt int
	by      string
	stale   bool
}

// lastAttemptedBy is the SQL of the client that last fetched a job of river_job (alias j).
func lastAttemptedBy(d dialect) string {
	if d == dialectPostgres {
		return `j.attempted_by[array_upper(j.attempted_by, 1)]`
	}
	return `json_extract(j.attempted_by, '$[#-1]')`
}

// rescueSQL holds the dialect's statements.
type rescueSQL struct {
	candidates string // args: dead-after in ms
	release    string // args: errorJSON, id, attempt, client id
}

func rescueStatements(d dialect) rescueSQL {
	by := lastAttemptedBy(d)
	candidates := `SELECT j.id, j.attempt, ` + by + `,
		CASE WHEN w.heartbeat_at < ` + dbNowMS(d) + ` - ? THEN 1 ELSE 0 END
		FROM river_job j LEFT JOIN proxyline_worker w ON w.id = ` + by + `
		WHERE j.state = 'running' AND j.attempted_by IS NOT NULL`
	if d == dialectPostgres {
		return rescueSQL{
			candidates: candidates,
			release: `UPDATE river_job j SET
				state = CASE WHEN attempt >= max_attempts THEN 'discarded'::river_job_state ELSE 'available'::river_job_state END,
				finalized_at = CASE WHEN attempt >= max_attempts THEN now() ELSE NULL END,
				scheduled_at = now(),
				errors = array_append(errors, ?::jsonb)
				WHERE id = ? AND state = 'running' AND attempt = ? AND ` + by + ` = ?`,
		}
	}
	return rescueSQL{
		candidates: candidates,
		// Times are text in River's SQLite schema, in exactly this format (see riversqlite).
		release: `UPDATE river_job AS j SET
			state = CASE WHEN attempt >= max_attempts THEN 'discarded' ELSE 'available' END,
			finalized_at = CASE WHEN attempt >= max_attempts THEN strftime('%Y-%m-%d %H:%M:%f', 'now') ELSE NULL END,
			scheduled_at = strftime('%Y-%m-%d %H:%M:%f', 'now'),
			errors = jsonb(json_insert(json(coalesce(errors, jsonb('[]'))), '$[#]', json(?)))
			WHERE id = ? AND state = 'running' AND attempt = ? AND ` + by + ` = ?`,
	}
}

// attemptError is River's error record (rivertype.AttemptError's JSON form).
type attemptError struct {
	At      time.Time `json:"at"`
	Attempt int       `json:"attempt"`
	Error   string    `json:"error"`
	Trace   string    `json:"trace"`
}

// reasonProcessGone is Rescued.Reason for a job of a dead worker process of this machine.
const reasonProcessGone = "process gone"

// Rescued is one job a rescuer moved.
type Rescued struct {
	JobID     int64
	Attempt   int
	DeadBy    string
	Reason    string // "process gone" (this host) or "heartbeat stale"
	Discarded bool
}

// RescueOnce hands back the running jobs of dead workers: those whose last attempt was made by
// a dead process of this host, and, when deadAfter > 0, those whose worker's heartbeat is older
// than deadAfter by the database's clock, on another host or stopped on this one (a SIGSTOPped
// worker is alive but does not run; a running worker of this host is never handed back for a
// late heartbeat: /proc says it lives). self's own jobs are never touched. It also deletes the worker rows
// of dead processes of this host, and returns what it moved. Every worker calls it
// periodically; tests may call it too.
func (s *Store) RescueOnce(ctx context.Context, self Identity, deadAfter time.Duration) ([]Rescued, error) {
	cands, err := s.rescueCandidates(ctx, deadAfter)
	if err != nil {
		return nil, err
	}
	states := map[string]string{} // process state of workers of this host, by client id
	local := func(by string) string {
		if st, ok := states[by]; ok {
			return st
		}
		st := "" // not of this host, or /proc could not say
		if id, err := ParseIdentity(by); err == nil && id.Local(self) {
			if ps, err := id.State(); err == nil {
				st = ps
			}
		}
		states[by] = st
		return st
	}
	var out []Rescued
	for _, c := range cands {
		r := Rescued{JobID: c.id, Attempt: c.attempt, DeadBy: c.by}
		st := local(c.by)
		switch {
		case c.by == self.String():
			continue
		case st == ProcessGone:
			r.Reason = reasonProcessGone
		case st == ProcessRunning:
			// A worker of this host that runs (not stopped) keeps its jobs, however late its
			// heartbeat: on a busy machine a heartbeat can be seconds late, and handing back a
			// live worker's job only makes it run twice (the fence would drop one result).
			continue
		case c.stale && deadAfter > 0:
			r.Reason = "heartbeat stale"
		default:
			continue
		}
		moved, err := s.release(ctx, self, &r, deadAfter)
		if err != nil {
			return out, err
		}
		if moved {
			out = append(out, r)
		}
	}
	if err := s.pruneWorkers(ctx, self); err != nil {
		return out, err
	}
	return out, nil
}

func (s *Store) rescueCandidates(ctx context.Context, deadAfter time.Duration) ([]rescueCandidate, error) {
	bound := deadAfter.Milliseconds()
	if deadAfter <= 0 {
		bound = 1 << 62 // no heartbeat is that old
	}
	rows, err := s.eng.db().Query(ctx, rescueStatements(s.eng.dialect()).candidates, bound)
	if err != nil {
		return nil, fmt.Errorf("find running jobs: %w", err)
	}
	defer rows.Close()
	var cands []rescueCandidate
	for rows.Next() {
		var c rescueCandidate
		var stale int
		if err := rows.Scan(&c.id, &c.attempt, &c.by, &stale); err != nil {
			return nil, fmt.Errorf("find running jobs: %w", err)
		}
		c.stale = stale == 1
		cands = append(cands, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find running jobs: %w", err)
	}
	return cands, nil
}

// release hands r's job back (or discards it when its attempts are spent) if it still runs
// r.Attempt by r.DeadBy, and reports whether it did.
func (s *Store) release(ctx context.Context, self Identity, r *Rescued, deadAfter time.Duration) (bool, error) {
	why := fmt.Sprintf("worker %s died while running the job (found by %s)", r.DeadBy, self)
	if r.Reason != reasonProcessGone {
		why = fmt.Sprintf("worker %s was not heard from for more than %s while running the job (found by %s)", r.DeadBy, deadAfter, self)
	}
	rec, _ := json.Marshal(attemptError{At: time.Now().UTC(), Attempt: r.Attempt, Error: why})
	n, err := s.eng.db().Exec(ctx, rescueStatements(s.eng.dialect()).release, string(rec), r.JobID, r.Attempt, r.DeadBy)
	if err != nil {
		return false, fmt.Errorf("hand back job %d of dead worker %s: %w", r.JobID, r.DeadBy, err)
	}
	if n != 1 {
		return false, nil
	}
	// Read back what the guarded update decided, for the log.
	if now, err := s.jobNow(ctx, r.JobID); err == nil {
		r.Discarded = now.State == "discarded"
	}
	return true, nil
}

// jobHolder is where a job stands: its state, its attempt and the client that last fetched it.
type jobHolder struct {
	State   string
	Attempt int
	By      string
}

// jobNow reads where job id stands now.
func (s *Store) jobNow(ctx context.Context, id int64) (jobHolder, error) {
	rows, err := s.eng.db().Query(ctx, `SELECT state, attempt, coalesce(`+lastAttemptedBy(s.eng.dialect())+`, '')
		FROM river_job j WHERE id = ?`, id)
	if err != nil {
		return jobHolder{}, fmt.Errorf("read job %d: %w", id, err)
	}
	defer rows.Close()
	var h jobHolder
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return h, fmt.Errorf("read job %d: %w", id, err)
		}
		return jobHolder{State: "deleted"}, nil
	}
	if err := rows.Scan(&h.State, &h.Attempt, &h.By); err != nil {
		return h, fmt.Errorf("read job %d: %w", id, err)
	}
	return h, nil
}

// pruneWorkers deletes the worker rows of dead processes of this host and PID namespace.
func (s *Store) pruneWorkers(ctx context.Context, self Identity) error {
	ws, err := s.workerRows(ctx)
	if err != nil {
		return err
	}
	for _, w := range ws {
		id, err := ParseIdentity(w.ID)
		if err != nil || !id.Local(self) {
			continue
		}
		if alive, err := id.Alive(); err == nil && !alive {
			if _, err := s.eng.db().Exec(ctx, `DELETE FROM proxyline_worker WHERE id = ?`, w.ID); err != nil {
				return fmt.Errorf("delete worker row %s: %w", w.ID, err)
			}
		}
	}
	return nil
}
