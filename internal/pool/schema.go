package pool

import (
	"context"
	"fmt"
	"time"
)

// migration is one version of the pool's schema. The statements are written in the subset of SQL
// that SQLite and PostgreSQL share (TEXT, BIGINT, INTEGER, composite primary keys), so one list
// serves both; times are Unix milliseconds for the same reason.
type migration struct {
	version    int
	statements []string
}

// migrations is the pool's schema history. Append, never edit a released version.
func migrations() []migration {
	return []migration{{
		version: 1,
		statements: []string{
			// proxyline_proxy: the current result of each proxy. addr is host:port, scheme is the
			// scheme the proxy was given with ("" for a bare host:port), protocol the one the
			// check found.
			`CREATE TABLE IF NOT EXISTS proxyline_proxy (
				addr       TEXT    NOT NULL,
				scheme     TEXT    NOT NULL,
				proxy      TEXT    NOT NULL,
				protocol   TEXT    NOT NULL,
				class      TEXT    NOT NULL,
				err        TEXT    NOT NULL,
				exit_ip    TEXT    NOT NULL,
				anonymity  TEXT    NOT NULL,
				connect_ms BIGINT  NOT NULL,
				total_ms   BIGINT  NOT NULL,
				checked_at BIGINT  NOT NULL,
				job_id     BIGINT  NOT NULL,
				PRIMARY KEY (addr, scheme)
			)`,
			// proxyline_check: one row per (job, proxy): the history.
			`CREATE TABLE IF NOT EXISTS proxyline_check (
				job_id     BIGINT  NOT NULL,
				addr       TEXT    NOT NULL,
				scheme     TEXT    NOT NULL,
				attempt    INTEGER NOT NULL,
				worker     TEXT    NOT NULL,
				protocol   TEXT    NOT NULL,
				class      TEXT    NOT NULL,
				err        TEXT    NOT NULL,
				exit_ip    TEXT    NOT NULL,
				anonymity  TEXT    NOT NULL,
				connect_ms BIGINT  NOT NULL,
				total_ms   BIGINT  NOT NULL,
				checked_at BIGINT  NOT NULL,
				PRIMARY KEY (job_id, addr, scheme)
			)`,
			// proxyline_worker: live workers and their heartbeats, for status.
			`CREATE TABLE IF NOT EXISTS proxyline_worker (
				id           TEXT    NOT NULL PRIMARY KEY,
				host         TEXT    NOT NULL,
				pid          BIGINT  NOT NULL,
				started_at   BIGINT  NOT NULL,
				heartbeat_at BIGINT  NOT NULL,
				concurrency  INTEGER NOT NULL,
				backend      TEXT    NOT NULL,
				layers       TEXT    NOT NULL
			)`,
		},
	}}
}

// Migrate brings the pool's tables to the newest version. It must run inside a transaction that
// holds the database's migration lock (the queue package does both), so two processes never
// apply the same version.
func Migrate(ctx context.Context, db DB) (applied []int, err error) {
	if _, err := db.Exec(ctx, `CREATE TABLE IF NOT EXISTS proxyline_migration (
		version    INTEGER NOT NULL PRIMARY KEY,
		applied_at BIGINT  NOT NULL
	)`); err != nil {
		return nil, fmt.Errorf("create proxyline_migration: %w", err)
	}
	have := map[int]bool{}
	rows, err := db.Query(ctx, `SELECT version FROM proxyline_migration`)
	if err != nil {
		return nil, fmt.Errorf("read proxyline_migration: %w", err)
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read proxyline_migration: %w", err)
		}
		have[v] = true
	}
	if err := rows.Err(); err != nil {
		rows.Close()
		return nil, fmt.Errorf("read proxyline_migration: %w", err)
	}
	rows.Close()
	for _, m := range migrations() {
		if have[m.version] {
			continue
		}
		for i, s := range m.statements {
			if _, err := db.Exec(ctx, s); err != nil {
				return applied, fmt.Errorf("pool migration %d statement %d: %w", m.version, i+1, err)
			}
		}
		if _, err := db.Exec(ctx, `INSERT INTO proxyline_migration (version, applied_at) VALUES (?, ?)`,
			m.version, time.Now().UnixMilli()); err != nil {
			return applied, fmt.Errorf("record pool migration %d: %w", m.version, err)
		}
		applied = append(applied, m.version)
	}
	return applied, nil
}

// Pending reports whether some pool migration is not applied yet (or the tables are missing).
func Pending(ctx context.Context, db DB) bool {
	rows, err := db.Query(ctx, `SELECT max(version) FROM proxyline_migration`)
	if err != nil {
		return true
	}
	defer rows.Close()
	var v *int64
	if !rows.Next() || rows.Scan(&v) != nil || v == nil {
		return true
	}
	ms := migrations()
	return int(*v) < ms[len(ms)-1].version
}
