package pool

// Reads and writes for the rotator (internal/rotate): a cheap version of the live set, to poll
// often, and the rotator's passive failures.

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Version changes whenever a check result lands in the current rows (their number or the newest
// check moves). It is cheap to read: poll it, and List only when it changed.
type Version struct {
	Rows   int64
	Newest int64 // Unix milliseconds of the newest checked_at of the history
}

// liveVersionSQL reads a Version without reading the pool: the number of current rows from the
// counters (counts.go), the newest check from the end of the history's age index
// (proxyline_check_age), an index seek on both engines. Every result that lands in the current
// rows is also a history row with the same checked_at, so the newest of the history is the newest
// of the current rows, or newer. (Counting the current rows and taking their max(checked_at) read
// all of them at every poll: 1,000,000 rows at a million proxies.)
const liveVersionSQL = `SELECT
	(SELECT COALESCE(sum(proxies), 0) FROM proxyline_pool_count),
	(SELECT COALESCE(max(checked_at), 0) FROM proxyline_check)`

// LiveVersion returns the pool's Version.
func LiveVersion(ctx context.Context, db DB) (Version, error) {
	rows, err := db.Query(ctx, liveVersionSQL)
	if err != nil {
		return Version{}, fmt.Errorf("pool version: %w", err)
	}
	var v Version
	if rows.Next() {
		if err := rows.Scan(&v.Rows, &v.Newest); err != nil {
			rows.Close()
			return Version{}, fmt.Errorf("pool version: %w", err)
		}
	}
	if err := closeRows(rows); err != nil {
		return Version{}, fmt.Errorf("pool version: %w", err)
	}
	return v, nil
}

// PassiveFailure is a failure the rotator saw through a proxy of the pool while serving.
type PassiveFailure struct {
	Addr   string // host:port, as in proxyline_proxy
	Scheme string // the scheme the proxy was listed with ("" for a bare one)
	At     time.Time
	Err    string
}

// RecordPassive adds failures to proxyline_passive: per proxy, a running count, the time and the
// error of the last one. Checks are not changed: the pool's class stays what the checker found.
func RecordPassive(ctx context.Context, db DB, fs []PassiveFailure) error {
	type agg struct {
		f PassiveFailure
		n int64
	}
	index := map[string]int{}
	var rows []agg
	for _, f := range fs { // one row per key: a statement may not update a row twice
		k := f.Addr + "|" + f.Scheme
		if i, ok := index[k]; ok {
			rows[i].n++
			if !f.At.Before(rows[i].f.At) {
				rows[i].f = f
			}
			continue
		}
		index[k] = len(rows)
		rows = append(rows, agg{f, 1})
	}
	for i := 0; i < len(rows); i += batchRows {
		part := rows[i:min(i+batchRows, len(rows))]
		var b strings.Builder
		args := make([]any, 0, len(part)*5)
		b.WriteString(`INSERT INTO proxyline_passive (addr, scheme, failures, last_at, last_err) VALUES `)
		for j, r := range part {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString("(?, ?, ?, ?, ?)")
			args = append(args, r.f.Addr, r.f.Scheme, r.n, r.f.At.UnixMilli(), r.f.Err)
		}
		b.WriteString(` ON CONFLICT (addr, scheme) DO UPDATE SET
			failures = proxyline_passive.failures + excluded.failures,
			last_at = excluded.last_at, last_err = excluded.last_err`)
		if _, err := db.Exec(ctx, b.String(), args...); err != nil {
			return fmt.Errorf("record %d passive failures: %w", len(part), err)
		}
	}
	return nil
}
