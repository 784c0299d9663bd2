package pool

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Dialect is the SQL flavour of a database, for the few statements that differ (triggers).
type Dialect int

// The dialects.
const (
	SQLite Dialect = iota
	Postgres
)

// migration is one version of the pool's schema. The statements are written in the subset of SQL
// that SQLite and PostgreSQL share (TEXT, BIGINT, INTEGER, composite primary keys), so one list
// serves both; times are Unix milliseconds for the same reason. What cannot be shared (triggers)
// is in perDialect, run after statements; then fill, shared again.
type migration struct {
	version    int
	statements []string
	perDialect map[Dialect][]string
	fill       []string
	// down undoes the version (tests and benchmarks time a migration on a populated pool).
	down map[Dialect][]string
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
	}, {
		version: 2,
		statements: []string{
			// proxyline_source_proxy: which source named which proxy (scrape --enqueue), keyed
			// like proxyline_proxy (addr, scheme as given), so a source's yield is a join.
			`CREATE TABLE IF NOT EXISTS proxyline_source_proxy (
				source     TEXT    NOT NULL,
				addr       TEXT    NOT NULL,
				scheme     TEXT    NOT NULL,
				first_seen BIGINT  NOT NULL,
				last_seen  BIGINT  NOT NULL,
				PRIMARY KEY (source, addr, scheme)
			)`,
			// proxyline_geo: country, city and autonomous system of a proxy's address, from the
			// scraper's offline MaxMind databases. Absent when unknown.
			`CREATE TABLE IF NOT EXISTS proxyline_geo (
				addr       TEXT    NOT NULL PRIMARY KEY,
				country    TEXT    NOT NULL,
				city       TEXT    NOT NULL,
				asn        BIGINT  NOT NULL,
				as_org     TEXT    NOT NULL,
				updated_at BIGINT  NOT NULL
			)`,
		},
	}, {
		version: 3,
		statements: []string{
			// proxyline_passive: failures the rotator (proxyline serve) saw through pool proxies
			// while serving, per proxy: how many, and the last one. The checker's results are
			// not changed by them.
			`CREATE TABLE IF NOT EXISTS proxyline_passive (
				addr     TEXT   NOT NULL,
				scheme   TEXT   NOT NULL,
				failures BIGINT NOT NULL,
				last_at  BIGINT NOT NULL,
				last_err TEXT   NOT NULL,
				PRIMARY KEY (addr, scheme)
			)`,
		},
	}, {
		version: 4,
		statements: []string{
			// The console's reads (query.go). One index serves every filtered page of the pool:
			// it is in the listing's order (class, then fastest first) and carries the columns
			// the filters test, so a page is a walk of the index that stops at its limit, a
			// cursor is a seek, and a filter that matches little costs index entries, not table
			// rows. One index, not one per filter: each costs every result written (measured:
			// four of them made a 100-proxy pool write 2-3 times slower). Then addresses of a
			// country, and one proxy's history, newest first.
			`CREATE INDEX IF NOT EXISTS proxyline_proxy_listing ON proxyline_proxy
				(class, total_ms, addr, scheme, protocol, anonymity, checked_at)`,
			`CREATE INDEX IF NOT EXISTS proxyline_geo_country ON proxyline_geo (country, addr)`,
			`CREATE INDEX IF NOT EXISTS proxyline_check_addr ON proxyline_check (addr, scheme, checked_at)`,
		},
	}, {
		version: 5,
		statements: []string{
			// proxyline_schedule: when `proxyline run` checks each proxy next (schedule.go).
			// next_check_at is Unix milliseconds (0: a new candidate, due before every re-check);
			// fail_streak counts failed checks in a row (the dead back-off's exponent); job_id is
			// the check job in flight (0: none); checked_at is the last result the schedule took.
			`CREATE TABLE IF NOT EXISTS proxyline_schedule (
				addr          TEXT    NOT NULL,
				scheme        TEXT    NOT NULL,
				proxy         TEXT    NOT NULL,
				next_check_at BIGINT  NOT NULL,
				fail_streak   INTEGER NOT NULL,
				job_id        BIGINT  NOT NULL,
				checked_at    BIGINT  NOT NULL,
				PRIMARY KEY (addr, scheme)
			)`,
			// The due query: the earliest next_check_at first, a walk of this index to its limit.
			// It carries the columns the query reads, so a batch costs no lookup in the table
			// (measured: 1000 due of a million, 49 ms on SQLite without them).
			`CREATE INDEX IF NOT EXISTS proxyline_schedule_due ON proxyline_schedule (next_check_at, addr, scheme, proxy)`,
			// Proxies whose check job is in flight, for settling results: small, partial.
			`CREATE INDEX IF NOT EXISTS proxyline_schedule_inflight ON proxyline_schedule (job_id) WHERE job_id > 0`,
			// Retention by age deletes the oldest history first without a scan.
			`CREATE INDEX IF NOT EXISTS proxyline_check_age ON proxyline_check (checked_at)`,
		},
	}, countsMigration()}
}

// Migrate brings the pool's tables to the newest version. It must run inside a transaction that
// holds the database's migration lock (the queue package does both), so two processes never
// apply the same version.
func Migrate(ctx context.Context, db DB, d Dialect) (applied []int, err error) {
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
		all := append(append(slices.Clone(m.statements), m.perDialect[d]...), m.fill...)
		for i, s := range all {
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

// Unmigrate undoes version (which must be the newest applied, and have a way down) in the same
// conditions as Migrate: tests and benchmarks use it to time a migration on a populated pool.
func Unmigrate(ctx context.Context, db DB, d Dialect, version int) error {
	for _, m := range migrations() {
		if m.version != version {
			continue
		}
		if m.down == nil {
			return fmt.Errorf("pool migration %d has no way down", version)
		}
		for i, s := range m.down[d] {
			if _, err := db.Exec(ctx, s); err != nil {
				return fmt.Errorf("undo pool migration %d statement %d: %w", version, i+1, err)
			}
		}
		_, err := db.Exec(ctx, `DELETE FROM proxyline_migration WHERE version = ?`, version)
		return err
	}
	return fmt.Errorf("no pool migration %d", version)
}
