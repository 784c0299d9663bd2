package pool

import (
	"context"
	"fmt"
	"time"

	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/proxy"
)

// Entry is the current row of one proxy.
type Entry struct {
	Proxy     string // the proxy with the protocol the check found, scheme://[user:pass@]host:port
	Addr      string
	Scheme    string // as given; "" for a bare host:port
	Protocol  string // as found by the check
	Class     check.Class
	Err       string
	ExitIP    string
	Anonymity check.Anonymity
	Connect   time.Duration
	Total     time.Duration
	CheckedAt time.Time
	JobID     int64
}

// List returns the current rows, alive ones only unless all is set, fastest first.
func List(ctx context.Context, db DB, all bool) ([]Entry, error) {
	q := `SELECT proxy, addr, scheme, protocol, class, err, exit_ip, anonymity, connect_ms, total_ms, checked_at, job_id
		FROM proxyline_proxy`
	var args []any
	if !all {
		q += ` WHERE class = ?`
		args = append(args, string(check.Alive))
	}
	q += ` ORDER BY class, total_ms, addr, scheme`
	rows, err := db.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list pool: %w", err)
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		var e Entry
		var class, anon string
		var conn, total, at int64
		if err := rows.Scan(&e.Proxy, &e.Addr, &e.Scheme, &e.Protocol, &class, &e.Err, &e.ExitIP, &anon,
			&conn, &total, &at, &e.JobID); err != nil {
			return nil, fmt.Errorf("list pool: %w", err)
		}
		e.Class, e.Anonymity = check.Class(class), check.Anonymity(anon)
		e.Connect, e.Total = time.Duration(conn)*time.Millisecond, time.Duration(total)*time.Millisecond
		e.CheckedAt = time.UnixMilli(at).UTC()
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list pool: %w", err)
	}
	return out, nil
}

// Result turns an entry back into a check result (for writers that format results).
func (e Entry) Result(p proxy.Proxy) check.Result {
	return check.Result{Proxy: p, Class: e.Class, Err: e.Err, ExitIP: e.ExitIP, Anonymity: e.Anonymity,
		Connect: e.Connect, Total: e.Total, CheckedAt: e.CheckedAt}
}

// Stats counts the current rows.
type Stats struct {
	Total      int64            `json:"total"`
	Alive      int64            `json:"alive"`
	ByClass    map[string]int64 `json:"by_class"`
	ByProtocol map[string]int64 `json:"alive_by_protocol"`
	History    int64            `json:"history_rows"`
}

// Count returns the pool's statistics.
func Count(ctx context.Context, db DB) (Stats, error) {
	s := Stats{ByClass: map[string]int64{}, ByProtocol: map[string]int64{}}
	if err := countInto(ctx, db, `SELECT class, count(*) FROM proxyline_proxy GROUP BY class`, s.ByClass); err != nil {
		return s, err
	}
	if err := countInto(ctx, db, `SELECT protocol, count(*) FROM proxyline_proxy WHERE class = 'alive' GROUP BY protocol`, s.ByProtocol); err != nil {
		return s, err
	}
	for c, n := range s.ByClass {
		s.Total += n
		if c == string(check.Alive) {
			s.Alive = n
		}
	}
	h := map[string]int64{}
	if err := countInto(ctx, db, `SELECT 'n', count(*) FROM proxyline_check`, h); err != nil {
		return s, err
	}
	s.History = h["n"]
	return s, nil
}

func countInto(ctx context.Context, db DB, q string, into map[string]int64) error {
	rows, err := db.Query(ctx, q)
	if err != nil {
		return fmt.Errorf("count pool: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		var n int64
		if err := rows.Scan(&k, &n); err != nil {
			return fmt.Errorf("count pool: %w", err)
		}
		into[k] = n
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("count pool: %w", err)
	}
	return nil
}
