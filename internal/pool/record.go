package pool

import (
	"context"
	"fmt"

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

// Record writes the results of one job: a history row per proxy keyed by (job, addr, scheme), so
// a re-run of the same job overwrites its own rows instead of adding more, and the current row of
// each proxy, which a result only replaces when it is at least as new as the one there (a late
// result from a slow worker never overwrites a newer one). Run it in the transaction that
// completes the job, so results and completion commit together.
func Record(ctx context.Context, db DB, src Source, checks []Check) error {
	for _, c := range checks {
		r := c.Result
		addr, scheme := c.Given.Addr(), string(c.Given.Scheme)
		protocol := string(r.Proxy.Scheme)
		if protocol == "" {
			protocol = scheme
		}
		stored := c.Given
		if stored.Scheme == proxy.Unknown && r.Proxy.Scheme != proxy.Unknown {
			stored.Scheme = r.Proxy.Scheme
		}
		at := r.CheckedAt.UnixMilli()
		if r.CheckedAt.IsZero() {
			at = 0
		}
		args := []any{protocol, string(r.Class), r.Err, r.ExitIP, string(r.Anonymity),
			r.Connect.Milliseconds(), r.Total.Milliseconds(), at}
		if _, err := db.Exec(ctx, `INSERT INTO proxyline_check
			(job_id, addr, scheme, attempt, worker, protocol, class, err, exit_ip, anonymity, connect_ms, total_ms, checked_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (job_id, addr, scheme) DO UPDATE SET
				attempt = excluded.attempt, worker = excluded.worker, protocol = excluded.protocol,
				class = excluded.class, err = excluded.err, exit_ip = excluded.exit_ip,
				anonymity = excluded.anonymity, connect_ms = excluded.connect_ms,
				total_ms = excluded.total_ms, checked_at = excluded.checked_at`,
			append([]any{src.JobID, addr, scheme, src.Attempt, src.Worker}, args...)...); err != nil {
			return fmt.Errorf("record history of %s for job %d: %w", c.Given, src.JobID, err)
		}
		if _, err := db.Exec(ctx, `INSERT INTO proxyline_proxy
			(addr, scheme, proxy, protocol, class, err, exit_ip, anonymity, connect_ms, total_ms, checked_at, job_id)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (addr, scheme) DO UPDATE SET
				proxy = excluded.proxy, protocol = excluded.protocol, class = excluded.class,
				err = excluded.err, exit_ip = excluded.exit_ip, anonymity = excluded.anonymity,
				connect_ms = excluded.connect_ms, total_ms = excluded.total_ms,
				checked_at = excluded.checked_at, job_id = excluded.job_id
			WHERE excluded.checked_at >= proxyline_proxy.checked_at`,
			append(append([]any{addr, scheme, stored.String()}, args...), src.JobID)...); err != nil {
			return fmt.Errorf("record current result of %s for job %d: %w", c.Given, src.JobID, err)
		}
	}
	return nil
}
