package pool

import (
	"context"
	"fmt"
	"strings"
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

// EachOptions says which rows Each reads, and how much of each.
type EachOptions struct {
	// All reads every current row; false, the live ones.
	All bool
	// Countries keeps the rows whose address the geo table places in one of these countries
	// (ISO codes). Empty: every row.
	Countries []string
	// ProxyOnly, without All, fills only Found.Proxy and Class: all a plain list of live proxies
	// needs. Without Countries, the read is then a walk of one small index, never of the table.
	ProxyOnly bool
}

// liveProxiesSQL reads the live proxies' column proxy alone: the listing index (class, total_ms,
// addr, scheme, protocol, anonymity, checked_at, proxy) covers it, so both engines walk the index
// in order without touching the table.
func liveProxiesSQL(countries []string) (string, []any, func(Rows, *Found) error) {
	q := `SELECT p.proxy FROM proxyline_proxy p`
	var args []any
	if len(countries) > 0 {
		q += ` JOIN proxyline_geo g ON g.addr = p.addr AND g.country IN (?` + strings.Repeat(", ?", len(countries)-1) + `)`
		for _, c := range countries {
			args = append(args, c)
		}
	}
	q += ` WHERE p.class = 'alive'`
	return q, args, func(rows Rows, x *Found) error {
		x.Class = check.Alive
		return rows.Scan(&x.Proxy)
	}
}

// Each calls fn with the current rows o selects, fastest first (the order of List), each with
// the geo information of its address. It reads as it goes: the pool is never held in memory, and
// the first row comes as soon as the database finds it (an index serves the order, so nothing is
// sorted). An error of fn stops the reading and is returned as is.
func Each(ctx context.Context, db DB, o EachOptions, fn func(Found) error) error {
	q, args := Filter{AnyClass: o.All, Countries: o.Countries}.sql()
	scan := func(rows Rows, x *Found) error { return scanFound(rows, x) }
	if o.ProxyOnly && !o.All {
		q, args, scan = liveProxiesSQL(o.Countries)
	}
	q += ` ORDER BY p.class, p.total_ms, p.addr, p.scheme`
	rows, err := db.Query(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("read pool: %w", err)
	}
	defer rows.Close()
	var x Found // one for the whole read: scan's pointer would move a new one to the heap per row
	for rows.Next() {
		x = Found{}
		if err := scan(rows, &x); err != nil {
			return fmt.Errorf("read pool: %w", err)
		}
		if err := fn(x); err != nil {
			return err
		}
	}
	if err := closeRows(rows); err != nil {
		return fmt.Errorf("read pool: %w", err)
	}
	return nil
}
