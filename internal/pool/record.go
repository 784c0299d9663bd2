package pool

import (
	"context"
	"fmt"
	"strings"

	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/proxy"
)

// Check is one result to record: the proxy as it was given (its identity in the pool) and what
// the check found.
type Check struct {
	Given  proxy.Proxy
	Result check.Result
}

// Source says which job attempt produced a batch of results.
type Source struct {
	JobID   int64
	Attempt int
	Worker  string // the worker's client id
}

// batchRows is how many rows one INSERT carries: 13 parameters a row stays far below SQLite's
// 32,766 and PostgreSQL's 65,535 parameters per statement.
const batchRows = 500

// Record writes the results of one job: a history row per proxy keyed by (job, addr, scheme), so
// a re-run of the same job overwrites its own rows instead of adding more, and the current row of
// each proxy, which a result only replaces when it is at least as new as the one there (a late
// result from a slow worker never overwrites a newer one). Run it in the transaction that
// completes the job, so results and completion commit together.
//
// Two proxies of a batch with the same key (host:port and scheme, e.g. with different
// credentials) are one pool entry: the later one in the batch wins.
func Record(ctx context.Context, db DB, src Source, checks []Check) error {
	rows := dedupe(checks)
	for i := 0; i < len(rows); i += batchRows {
		part := rows[i:min(i+batchRows, len(rows))]
		if err := recordBatch(ctx, db, src, part); err != nil {
			return err
		}
	}
	return nil
}

// row is one result in the columns both tables share.
type row struct {
	addr, scheme, proxy, protocol, class, err, exitIP, anonymity string
	connectMS, totalMS, checkedAt                                int64
}

func dedupe(checks []Check) []row {
	index := map[string]int{}
	var out []row
	for _, c := range checks {
		r := c.Result
		stored := c.Given
		if stored.Scheme == proxy.Unknown && r.Proxy.Scheme != proxy.Unknown {
			stored.Scheme = r.Proxy.Scheme
		}
		protocol := string(r.Proxy.Scheme)
		if protocol == "" {
			protocol = string(c.Given.Scheme)
		}
		var at int64
		if !r.CheckedAt.IsZero() {
			at = r.CheckedAt.UnixMilli()
		}
		x := row{addr: c.Given.Addr(), scheme: string(c.Given.Scheme), proxy: stored.String(), protocol: protocol,
			class: string(r.Class), err: r.Err, exitIP: r.ExitIP, anonymity: string(r.Anonymity),
			connectMS: r.Connect.Milliseconds(), totalMS: r.Total.Milliseconds(), checkedAt: at}
		key := x.addr + "|" + x.scheme
		if i, ok := index[key]; ok {
			out[i] = x
			continue
		}
		index[key] = len(out)
		out = append(out, x)
	}
	return out
}

// recordBatch writes the current rows first, then the history: when the two are not in one
// transaction (a write outside a job), LiveVersion, which takes the newest check from the history,
// moves only once the current rows it stands for are written.
func recordBatch(ctx context.Context, db DB, src Source, rows []row) error {
	if err := recordCurrent(ctx, db, src, rows); err != nil {
		return err
	}
	return recordHistory(ctx, db, src, rows)
}

func recordHistory(ctx context.Context, db DB, src Source, rows []row) error {
	var b strings.Builder
	args := make([]any, 0, len(rows)*13)
	b.WriteString(`INSERT INTO proxyline_check
		(job_id, addr, scheme, attempt, worker, protocol, class, err, exit_ip, anonymity, connect_ms, total_ms, checked_at)
		VALUES `)
	for i, r := range rows {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
		args = append(args, src.JobID, r.addr, r.scheme, src.Attempt, src.Worker, r.protocol, r.class, r.err,
			r.exitIP, r.anonymity, r.connectMS, r.totalMS, r.checkedAt)
	}
	b.WriteString(` ON CONFLICT (job_id, addr, scheme) DO UPDATE SET
		attempt = excluded.attempt, worker = excluded.worker, protocol = excluded.protocol,
		class = excluded.class, err = excluded.err, exit_ip = excluded.exit_ip,
		anonymity = excluded.anonymity, connect_ms = excluded.connect_ms,
		total_ms = excluded.total_ms, checked_at = excluded.checked_at`)
	if _, err := db.Exec(ctx, b.String(), args...); err != nil {
		return fmt.Errorf("record history of job %d (%d proxies): %w", src.JobID, len(rows), err)
	}
	return nil
}

func recordCurrent(ctx context.Context, db DB, src Source, rows []row) error {
	var b strings.Builder
	args := make([]any, 0, len(rows)*12)
	b.WriteString(`INSERT INTO proxyline_proxy
		(addr, scheme, proxy, protocol, class, err, exit_ip, anonymity, connect_ms, total_ms, checked_at, job_id)
		VALUES `)
	for i, r := range rows {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
		args = append(args, r.addr, r.scheme, r.proxy, r.protocol, r.class, r.err, r.exitIP, r.anonymity,
			r.connectMS, r.totalMS, r.checkedAt, src.JobID)
	}
	b.WriteString(` ON CONFLICT (addr, scheme) DO UPDATE SET
		proxy = excluded.proxy, protocol = excluded.protocol, class = excluded.class,
		err = excluded.err, exit_ip = excluded.exit_ip, anonymity = excluded.anonymity,
		connect_ms = excluded.connect_ms, total_ms = excluded.total_ms,
		checked_at = excluded.checked_at, job_id = excluded.job_id
		WHERE excluded.checked_at >= proxyline_proxy.checked_at`)
	if _, err := db.Exec(ctx, b.String(), args...); err != nil {
		return fmt.Errorf("record current results of job %d (%d proxies): %w", src.JobID, len(rows), err)
	}
	return nil
}
