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
}

func (s *Store) registerWorker(ctx context.Context, w WorkerRow) error {
	_, err := s.eng.db().Exec(ctx, `INSERT INTO proxyline_worker
		(id, host, pid, started_at, heartbeat_at, concurrency, backend, layers) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at`,
		w.ID, w.Host, w.PID, w.StartedAt.UnixMilli(), w.HeartbeatAt.UnixMilli(), w.Concurrency, w.Backend,
		strings.Join(w.Layers, ","))
	if err != nil {
		return fmt.Errorf("register worker %s: %w", w.ID, err)
	}
	return nil
}

func (s *Store) heartbeat(ctx context.Context, id string, at time.Time) error {
	if _, err := s.eng.db().Exec(ctx, `UPDATE proxyline_worker SET heartbeat_at = ? WHERE id = ?`, at.UnixMilli(), id); err != nil {
		return fmt.Errorf("heartbeat of worker %s: %w", id, err)
	}
	return nil
}

func (s *Store) unregisterWorker(ctx context.Context, id string) error {
	if _, err := s.eng.db().Exec(ctx, `DELETE FROM proxyline_worker WHERE id = ?`, id); err != nil {
		return fmt.Errorf("unregister worker %s: %w", id, err)
	}
	return nil
}

func (s *Store) workerRows(ctx context.Context) ([]WorkerRow, error) {
	rows, err := s.eng.db().Query(ctx, `SELECT id, host, pid, started_at, heartbeat_at, concurrency, backend, layers
		FROM proxyline_worker ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list workers: %w", err)
	}
	defer rows.Close()
	var out []WorkerRow
	for rows.Next() {
		var w WorkerRow
		var started, beat int64
		var layers string
		if err := rows.Scan(&w.ID, &w.Host, &w.PID, &started, &beat, &w.Concurrency, &w.Backend, &layers); err != nil {
			return nil, fmt.Errorf("list workers: %w", err)
		}
		w.StartedAt, w.HeartbeatAt = time.UnixMilli(started).UTC(), time.UnixMilli(beat).UTC()
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
