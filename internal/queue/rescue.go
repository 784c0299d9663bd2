package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// The local rescuer. River's own rescuer returns a running job to the queue only when it has run
// longer than RescueStuckJobsAfter, because across machines it cannot tell a dead worker from a
// slow one. On one machine we can: each River client's ID is the Identity of its process, River
// writes it into the job's attempted_by when the job starts, and /proc says whether that process
// (same pid AND same start time) still lives. Each worker runs rescueOnce about every 500 ms.

// rescueCandidate is a running job whose last attempt was made by a client of this host.
type rescueCandidate struct {
	id      int64
	attempt int
	by      string
}

// rescueSQL holds the dialect's statements. Each is guarded: it moves the job only while it is
// still running and its last attempt is still by the dead client, so two rescuers never both move
// a job, and a job a live worker picked up again meanwhile is never touched.
type rescueSQL struct {
	candidates string
	release    string // args: errorJSON, now, id, dead client id
}

func rescueStatements(d dialect) rescueSQL {
	if d == dialectPostgres {
		return rescueSQL{
			candidates: `SELECT id, attempt, attempted_by[array_upper(attempted_by, 1)]
				FROM river_job WHERE state = 'running' AND attempted_by IS NOT NULL
				AND attempted_by[array_upper(attempted_by, 1)] LIKE ?`,
			release: `UPDATE river_job SET
				state = CASE WHEN attempt >= max_attempts THEN 'discarded'::river_job_state ELSE 'available'::river_job_state END,
				finalized_at = CASE WHEN attempt >= max_attempts THEN now() ELSE NULL END,
				scheduled_at = now(),
				errors = array_append(errors, ?::jsonb)
				WHERE id = ? AND state = 'running' AND attempted_by[array_upper(attempted_by, 1)] = ?`,
		}
	}
	return rescueSQL{
		candidates: `SELECT id, attempt, json_extract(attempted_by, '$[#-1]')
			FROM river_job WHERE state = 'running' AND attempted_by IS NOT NULL
			AND json_extract(attempted_by, '$[#-1]') LIKE ?`,
		// Times are text in River's SQLite schema, in exactly this format (see riversqlite).
		release: `UPDATE river_job SET
			state = CASE WHEN attempt >= max_attempts THEN 'discarded' ELSE 'available' END,
			finalized_at = CASE WHEN attempt >= max_attempts THEN strftime('%Y-%m-%d %H:%M:%f', 'now') ELSE NULL END,
			scheduled_at = strftime('%Y-%m-%d %H:%M:%f', 'now'),
			errors = jsonb(json_insert(json(coalesce(errors, jsonb('[]'))), '$[#]', json(?)))
			WHERE id = ? AND state = 'running' AND json_extract(attempted_by, '$[#-1]') = ?`,
	}
}

// attemptError is River's error record (rivertype.AttemptError's JSON form).
type attemptError struct {
	At      time.Time `json:"at"`
	Attempt int       `json:"attempt"`
	Error   string    `json:"error"`
	Trace   string    `json:"trace"`
}

// Rescued is one job the rescuer moved.
type Rescued struct {
	JobID     int64
	Attempt   int
	DeadBy    string
	Discarded bool
}

// RescueOnce hands back every running job whose last attempt was made by a dead process of this
// host, and deletes the dead processes' worker rows. It returns what it moved. Every worker calls
// it periodically; status and tests may call it too.
func (s *Store) RescueOnce(ctx context.Context, self Identity) ([]Rescued, error) {
	stmts := rescueStatements(s.eng.dialect())
	db := s.eng.db()
	prefix := escapeLike(self.Host) + "/%"
	rows, err := db.Query(ctx, stmts.candidates, prefix)
	if err != nil {
		return nil, fmt.Errorf("find running jobs of this host: %w", err)
	}
	var cands []rescueCandidate
	for rows.Next() {
		var c rescueCandidate
		if err := rows.Scan(&c.id, &c.attempt, &c.by); err != nil {
			rows.Close()
			return nil, fmt.Errorf("find running jobs of this host: %w", err)
		}
		cands = append(cands, c)
	}
	if err := rows.Err(); err != nil {
		rows.Close()
		return nil, fmt.Errorf("find running jobs of this host: %w", err)
	}
	rows.Close()

	dead := map[string]bool{}
	isDead := func(by string) bool {
		if d, ok := dead[by]; ok {
			return d
		}
		id, err := ParseIdentity(by)
		d := false
		if err == nil && id.Host == self.Host {
			alive, err := id.Alive()
			d = err == nil && !alive
		}
		dead[by] = d
		return d
	}
	var out []Rescued
	for _, c := range cands {
		if !isDead(c.by) {
			continue
		}
		rec, _ := json.Marshal(attemptError{At: time.Now().UTC(), Attempt: c.attempt,
			Error: fmt.Sprintf("worker %s died while running the job (found by %s)", c.by, self)})
		n, err := db.Exec(ctx, stmts.release, string(rec), c.id, c.by)
		if err != nil {
			return out, fmt.Errorf("hand back job %d of dead worker %s: %w", c.id, c.by, err)
		}
		if n == 1 {
			r := Rescued{JobID: c.id, Attempt: c.attempt, DeadBy: c.by}
			// Read back what the guarded update decided, for the log.
			if st, err := s.jobState(ctx, c.id); err == nil {
				r.Discarded = st == "discarded"
			}
			out = append(out, r)
		}
	}
	if err := s.pruneWorkers(ctx, self); err != nil {
		return out, err
	}
	return out, nil
}

func (s *Store) jobState(ctx context.Context, id int64) (string, error) {
	rows, err := s.eng.db().Query(ctx, `SELECT state FROM river_job WHERE id = ?`, id)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var st string
	if rows.Next() {
		err = rows.Scan(&st)
	}
	return st, err
}

// pruneWorkers deletes the worker rows of dead processes of this host.
func (s *Store) pruneWorkers(ctx context.Context, self Identity) error {
	ws, err := s.workerRows(ctx)
	if err != nil {
		return err
	}
	for _, w := range ws {
		id, err := ParseIdentity(w.ID)
		if err != nil || id.Host != self.Host {
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

// escapeLike makes s safe as a LIKE prefix by turning '%' into the one-character wildcard: the
// LIKE only narrows the rows read, the host is then compared exactly in Go.
func escapeLike(s string) string {
	return strings.NewReplacer("%", "_", "_", "_").Replace(s)
}
