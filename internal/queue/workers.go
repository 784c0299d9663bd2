package queue

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// WorkerRow is a worker's registration, refreshed by its heartbeat.
type WorkerRow struct {
	ID          string    `json:"id"`
	Host        string    `json:"host"`
	PID         int64     `json:"pid"`
	StartedAt   time.Time `json:"started_at"`
	HeartbeatAt time.Time `json:"heartbeat_at"`
	Concurrency int       `json:"concurrency"`
	Backend     string    `json:"backend"`
	Layers      []string  `json:"layers"`
	// HeartbeatAge is how old the heartbeat is by the database's clock (read, not stored).
	HeartbeatAge time.Duration `json:"-"`
}

// dbNowMS is the SQL of the database's clock in Unix milliseconds. Heartbeats are written and
// compared with it, never with a worker's clock, so clocks that disagree between machines do
// not make a live worker look dead (or a dead one alive).
func dbNowMS(d dialect) string {
	if d == dialectPostgres {
		return `(extract(epoch from clock_timestamp()) * 1000)::bigint`
	}
	return `CAST(unixepoch('subsec') * 1000 AS INTEGER)`
}

// registerWorker inserts (or renews) the worker's row, its heartbeat set to the database's clock.
func (s *Store) registerWorker(ctx context.Context, w WorkerRow) error {
	now := dbNowMS(s.eng.dialect())
	_, err := s.eng.db().Exec(ctx, `INSERT INTO proxyline_worker
		(id, host, pid, started_at, heartbeat_at, concurrency, backend, layers) VALUES (?, ?, ?, ?, `+now+`, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at`,
		w.ID, w.Host, w.PID, w.StartedAt.UnixMilli(), w.Concurrency, w.Backend, strings.Join(w.Layers, ","))
	if err != nil {
		return fmt.Errorf("register worker %s: %w", w.ID, err)
	}
	return nil
}

// heartbeat sets the worker's heartbeat to the database's clock. A row that is gone (deleted by
// hand, or by a rescuer that found the process dead) is registered again.
func (s *Store) heartbeat(ctx context.Context, w WorkerRow) error {
	n, err := s.eng.db().Exec(ctx, `UPDATE proxyline_worker SET heartbeat_at = `+dbNowMS(s.eng.dialect())+` WHERE id = ?`, w.ID)
	if err != nil {
		return fmt.Errorf("heartbeat of worker %s: %w", w.ID, err)
	}
	if n == 0 {
		return s.registerWorker(ctx, w)
	}
	return nil
}

func (s *Store) unregisterWorker(ctx context.Context, id string) error {
	if _, err := s.eng.db().Exec(ctx, `DELETE FROM proxyline_worker WHERE id = ?`, id); err != nil {
		return fmt.Errorf("unregister worker %s: %w", id, err)
	}
	return nil
}

// workerRows lists the registered workers, with the age of each heartbeat by the database's clock.
func (s *Store) workerRows(ctx context.Context) ([]WorkerRow, error) {
	rows, err := s.eng.db().Query(ctx, `SELECT id, host, pid, started_at, heartbeat_at, concurrency, backend, layers, `+
		dbNowMS(s.eng.dialect())+` - heartbeat_at FROM proxyline_worker ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list workers: %w", err)
	}
	defer rows.Close()
	var out []WorkerRow
	for rows.Next() {
		var w WorkerRow
		var started, beat, age int64
		var layers string
		if err := rows.Scan(&w.ID, &w.Host, &w.PID, &started, &beat, &w.Concurrency, &w.Backend, &layers, &age); err != nil {
			return nil, fmt.Errorf("list workers: %w", err)
		}
		w.StartedAt, w.HeartbeatAt = time.UnixMilli(started).UTC(), time.UnixMilli(beat).UTC()
		w.HeartbeatAge = time.Duration(age) * time.Millisecond
		if layers != "" {
			w.Layers = strings.Split(layers, ",")
		}
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list workers: %w", err)
	}
	return out, nil
}
