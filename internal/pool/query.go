package pool

// Reads for the console (internal/api, internal/web, internal/metrics): the pool filtered and
// paged, one proxy's history, and the pool's size by class, protocol and anonymity. Plain SQL
// with '?' placeholders, valid on SQLite and PostgreSQL; a pool migration (schema.go) adds the
// indexes they use, so that each answers from an index walk, not a scan of the pool.

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/proxyline/proxyline/internal/check"
)

// MaxLimit is the most rows one Find or History returns.
const MaxLimit = 10_000

// DefaultLimit is the number of rows Find and History return when Filter.Limit is zero.
const DefaultLimit = 100

// Filter selects current rows of the pool. The zero value selects the live proxies, fastest
// first, DefaultLimit of them.
type Filter struct {
	// Classes keeps proxies whose last check ended in one of these classes. Empty: alive only,
	// unless AnyClass.
	Classes []check.Class
	// AnyClass keeps proxies of every class (Classes is then ignored).
	AnyClass bool
	// Protocols keeps proxies speaking one of these protocols (as the check found them: http,
	// https, socks4, socks4a, socks5). Empty: any.
	Protocols []string
	// Countries keeps proxies whose address the geo table places in one of these countries (ISO
	// codes as the scraper's MaxMind database gives them, e.g. "DE"). Empty: any, with or
	// without geo information.
	Countries []string
	// Anonymity keeps proxies of one of these levels. Empty: any.
	Anonymity []check.Anonymity
	// MaxLatency keeps proxies whose last check took at most this long. Zero: no bound.
	MaxLatency time.Duration
	// CheckedSince keeps proxies checked at or after this time. Zero: no bound.
	CheckedSince time.Time
	// Limit is the most rows returned, 1 to MaxLimit. Zero: DefaultLimit.
	Limit int
	// After continues a listing after this row (Page.Next of the previous page). Zero: from the
	// fastest.
	After Cursor
}

// Cursor is a place in the pool's order: class, then fastest first (total_ms), then addr and
// scheme.
type Cursor struct {
	Class   string
	TotalMS int64
	Addr    string
	Scheme  string
}

// IsZero reports whether c is the start of the listing.
func (c Cursor) IsZero() bool { return c == Cursor{} }

// Found is a current row with the geo information of its address (empty when unknown).
type Found struct {
	Entry
	Geo Geo
}

// Page is one page of a Find.
type Page struct {
	Proxies []Found
	// Next continues the listing; zero when this page is the last.
	Next Cursor
}

// Find returns the proxies f selects, at most f.Limit of them, continuing after f.After, in the
// pool's order: by class ("alive" first, then the failed classes by name), each fastest first
// (total_ms), ties by address and scheme. Page.Next is set when more rows may follow.
func Find(ctx context.Context, db DB, f Filter) (Page, error) {
	limit := f.Limit
	if limit == 0 {
		limit = DefaultLimit
	}
	if limit < 0 || limit > MaxLimit {
		return Page{}, fmt.Errorf("find proxies: limit %d out of range 1-%d", limit, MaxLimit)
	}
	q, args := f.sql()
	q += ` ORDER BY p.class, p.total_ms, p.addr, p.scheme LIMIT ?`
	args = append(args, limit+1) // one more: is there a next page?
	rows, err := db.Query(ctx, q, args...)
	if err != nil {
		return Page{}, fmt.Errorf("find proxies: %w", err)
	}
	defer rows.Close()
	var page Page
	for rows.Next() {
		var x Found
		if err := scanFound(rows, &x); err != nil {
			return Page{}, fmt.Errorf("find proxies: %w", err)
		}
		page.Proxies = append(page.Proxies, x)
	}
	if err := rows.Err(); err != nil {
		return Page{}, fmt.Errorf("find proxies: %w", err)
	}
	if len(page.Proxies) > limit {
		page.Proxies = page.Proxies[:limit]
		last := page.Proxies[limit-1]
		page.Next = Cursor{Class: string(last.Class), TotalMS: last.Total.Milliseconds(), Addr: last.Addr, Scheme: last.Scheme}
	}
	return page, nil
}

// foundColumns are the columns scanFound reads, from proxyline_proxy p and proxyline_geo g.
const foundColumns = `p.proxy, p.addr, p.scheme, p.protocol, p.class, p.err, p.exit_ip, p.anonymity,
	p.connect_ms, p.total_ms, p.checked_at, p.job_id,
	COALESCE(g.country, ''), COALESCE(g.city, ''), COALESCE(g.asn, 0), COALESCE(g.as_org, '')`

// sql returns the SELECT and WHERE of f (without ORDER BY and LIMIT) and its arguments.
func (f Filter) sql() (string, []any) {
	var where []string
	var args []any
	in := func(col string, vals []string) {
		switch len(vals) {
		case 0:
		case 1:
			where = append(where, col+" = ?")
			args = append(args, vals[0])
		default:
			where = append(where, col+" IN (?"+strings.Repeat(", ?", len(vals)-1)+")")
			for _, v := range vals {
				args = append(args, v)
			}
		}
	}
	switch {
	case f.AnyClass:
	case len(f.Classes) == 0:
		in("p.class", []string{string(check.Alive)})
	default:
		in("p.class", strs(f.Classes))
	}
	in("p.protocol", f.Protocols)
	in("p.anonymity", strs(f.Anonymity))
	in("g.country", f.Countries)
	if f.MaxLatency > 0 {
		where = append(where, "p.total_ms <= ?")
		args = append(args, f.MaxLatency.Milliseconds())
	}
	if !f.CheckedSince.IsZero() {
		where = append(where, "p.checked_at >= ?")
		args = append(args, f.CheckedSince.UnixMilli())
	}
	if !f.After.IsZero() {
		// A row value comparison: both engines walk the index from this point.
		where = append(where, "(p.class, p.total_ms, p.addr, p.scheme) > (?, ?, ?, ?)")
		args = append(args, f.After.Class, f.After.TotalMS, f.After.Addr, f.After.Scheme)
	}
	join := "LEFT JOIN"
	if len(f.Countries) > 0 {
		join = "JOIN"
	}
	q := `SELECT ` + foundColumns + ` FROM proxyline_proxy p ` + join + ` proxyline_geo g ON g.addr = p.addr`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	return q, args
}

func strs[T ~string](xs []T) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = string(x)
	}
	return out
}

func scanFound(rows Rows, x *Found) error {
	var class, anon string
	var conn, total, at int64
	if err := rows.Scan(&x.Proxy, &x.Addr, &x.Scheme, &x.Protocol, &class, &x.Err, &x.ExitIP, &anon,
		&conn, &total, &at, &x.JobID, &x.Geo.Country, &x.Geo.City, &x.Geo.ASN, &x.Geo.ASOrg); err != nil {
		return err
	}
	x.Class, x.Anonymity = check.Class(class), check.Anonymity(anon)
	x.Connect, x.Total = time.Duration(conn)*time.Millisecond, time.Duration(total)*time.Millisecond
	x.CheckedAt = time.UnixMilli(at).UTC()
	x.Geo.Addr = x.Addr
	return nil
}

// Lookup returns the current rows of one address (host:port), one per scheme it was given with.
func Lookup(ctx context.Context, db DB, addr string) ([]Found, error) {
	rows, err := db.Query(ctx, `SELECT `+foundColumns+` FROM proxyline_proxy p
		LEFT JOIN proxyline_geo g ON g.addr = p.addr WHERE p.addr = ? ORDER BY p.scheme`, addr)
	if err != nil {
		return nil, fmt.Errorf("look up %s: %w", addr, err)
	}
	defer rows.Close()
	var out []Found
	for rows.Next() {
		var x Found
		if err := scanFound(rows, &x); err != nil {
			return nil, fmt.Errorf("look up %s: %w", addr, err)
		}
		out = append(out, x)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("look up %s: %w", addr, err)
	}
	return out, nil
}

// Past is one check of a proxy, from its history.
type Past struct {
	JobID     int64
	Attempt   int
	Worker    string
	Scheme    string // as given ("" for a bare host:port): with the address, the pool's key
	Protocol  string // as found
	Class     check.Class
	Err       string
	ExitIP    string
	Anonymity check.Anonymity
	Connect   time.Duration
	Total     time.Duration
	CheckedAt time.Time
}

// HistoryFilter selects checks of one address.
type HistoryFilter struct {
	// Scheme, when not nil, keeps the checks of the proxy given with this scheme ("" for the
	// bare host:port). Nil: every scheme of the address.
	Scheme *string
	// Since keeps checks at or after this time. Zero: all of them.
	Since time.Time
	// Limit is the most rows returned, 1 to MaxLimit. Zero: DefaultLimit.
	Limit int
}

// History returns the checks of the address addr (host:port), newest first.
func History(ctx context.Context, db DB, addr string, f HistoryFilter) ([]Past, error) {
	limit := f.Limit
	if limit == 0 {
		limit = DefaultLimit
	}
	if limit < 0 || limit > MaxLimit {
		return nil, fmt.Errorf("history of %s: limit %d out of range 1-%d", addr, limit, MaxLimit)
	}
	q := `SELECT job_id, attempt, worker, scheme, protocol, class, err, exit_ip, anonymity, connect_ms, total_ms, checked_at
		FROM proxyline_check WHERE addr = ?`
	args := []any{addr}
	if f.Scheme != nil {
		q += ` AND scheme = ?`
		args = append(args, *f.Scheme)
	}
	if !f.Since.IsZero() {
		q += ` AND checked_at >= ?`
		args = append(args, f.Since.UnixMilli())
	}
	q += ` ORDER BY checked_at DESC, job_id DESC, scheme LIMIT ?`
	args = append(args, limit)
	rows, err := db.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("history of %s: %w", addr, err)
	}
	defer rows.Close()
	var out []Past
	for rows.Next() {
		var p Past
		var class, anon string
		var conn, total, at int64
		if err := rows.Scan(&p.JobID, &p.Attempt, &p.Worker, &p.Scheme, &p.Protocol, &class, &p.Err, &p.ExitIP, &anon,
			&conn, &total, &at); err != nil {
			return nil, fmt.Errorf("history of %s: %w", addr, err)
		}
		p.Class, p.Anonymity = check.Class(class), check.Anonymity(anon)
		p.Connect, p.Total = time.Duration(conn)*time.Millisecond, time.Duration(total)*time.Millisecond
		p.CheckedAt = time.UnixMilli(at).UTC()
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("history of %s: %w", addr, err)
	}
	return out, nil
}

// Sizes is the pool's size: every current row by the class of its last check, and the live
// ones by protocol and anonymity.
type Sizes struct {
	ByClass map[check.Class]int64
	Live    []LiveSize
}

// LiveSize counts the live proxies of one protocol and anonymity level.
type LiveSize struct {
	Protocol  string
	Anonymity check.Anonymity
	Proxies   int64
}

// closeRows closes rows and returns the error of the iteration, if any.
func closeRows(rows Rows) error {
	err := rows.Err()
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	return err
}
