package testdb

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/proxyline/proxyline/internal/pool"
	"github.com/proxyline/proxyline/internal/queue"
)

// Spec says what Generate writes.
type Spec struct {
	// Proxies is the number of current rows (distinct proxies).
	Proxies int
	// History is the number of checks of each proxy, spread evenly over Days; the newest is the
	// current row.
	History int
	// Days is the span of the history, ending at Now.
	Days int
	// Sources is the number of scrape sources; every proxy is named by one, 30 % by a second.
	Sources int
	// Now is the time of the newest checks.
	Now time.Time
}

// Countries are the geo countries Generate gives 80 % of the addresses, the first ones most.
var Countries = []string{"US", "DE", "FR", "NL", "RU", "CN", "BR", "IN", "GB", "ID",
	"JP", "KR", "VN", "TH", "UA", "PL", "IT", "ES", "CA", "SG"}

var (
	protocols = []string{"http", "http", "http", "http", "http", "socks5", "socks5", "socks5", "socks4", "https"}
	anonymity = []string{"elite", "elite", "anonymous", "transparent"}
	deadClass = []string{"timeout", "timeout", "refused", "refused", "mismatch", "bad_response", "unreachable"}
)

// Addr returns the address of proxy i (0 <= i < Proxies).
func (s Spec) Addr(i int) string { return s.checkOf(i, 0).addr }

// genCheck is one generated check of proxy i.
type genCheck struct {
	addr, scheme, proxy, protocol, class, err, exitIP, anon string
	connectMS, totalMS, at, job                             int64
}

// checkOf returns check number round (0 = the oldest) of proxy i: deterministic.
func (s Spec) checkOf(i, round int) genCheck {
	r := rand.New(rand.NewPCG(uint64(i), uint64(round)))
	base := rand.New(rand.NewPCG(uint64(i), 1<<40)) // what does not change between checks
	ip := netip.AddrFrom4([4]byte{byte(1 + i>>24), byte(i >> 16), byte(i >> 8), byte(i)})
	port := []int{80, 8080, 3128, 1080}[base.IntN(4)]
	c := genCheck{addr: netip.AddrPortFrom(ip, uint16(port)).String(), protocol: protocols[base.IntN(len(protocols))]}
	if base.IntN(10) >= 6 {
		c.scheme = c.protocol
	}
	c.proxy = c.protocol + "://" + c.addr
	span := time.Duration(s.Days) * 24 * time.Hour
	step := span / time.Duration(max(s.History, 1))
	at := s.Now.Add(-span + time.Duration(round+1)*step - time.Duration(r.Int64N(int64(step/2)+1)))
	c.at = at.UnixMilli()
	c.job = int64(round)*int64(s.Proxies)/100 + int64(i/100) + 1
	if base.IntN(10) < 4 && r.IntN(10) < 8 { // 40 % of proxies are mostly alive
		c.class = "alive"
		c.anon = anonymity[base.IntN(len(anonymity))]
		c.exitIP = ip.String()
		c.connectMS = int64(5 + r.IntN(400))
		c.totalMS = c.connectMS + int64(20+r.IntN(4000))
		return c
	}
	c.class = deadClass[r.IntN(len(deadClass))]
	c.err = c.class + ": generated"
	c.totalMS = int64(r.IntN(10_000))
	if c.class == "timeout" {
		c.totalMS = 10_000
	}
	return c
}

// Generate writes a synthetic pool to the database db (a fresh one): the current rows, their
// history, geo rows for 80 % of the addresses, and the sources that named them. The pool is left
// one migration short (pool.CountsVersion undone): open it with queue.Migrate before reading it.
func Generate(ctx context.Context, db string, spec Spec) error {
	st, err := queue.Open(ctx, queue.Config{Database: db})
	if err != nil {
		return err
	}
	engine := st.Engine()
	dialect := pool.SQLite
	if engine == queue.EnginePostgres {
		dialect = pool.Postgres
	}
	// The pool as it was before its counters: the next Open with queue.Migrate adds them, and the
	// benchmark times that migration on the generated pool (the rows load faster without
	// triggers, too).
	err = pool.Unmigrate(ctx, st.DB(), dialect, pool.CountsVersion)
	st.Close()
	if err != nil {
		return err
	}
	tables := spec.tables()
	if engine == queue.EnginePostgres {
		return generatePostgres(ctx, db, tables)
	}
	return generateSQLite(ctx, db, tables)
}

// table is one table's generated rows.
type table struct {
	name    string
	columns []string
	rows    int
	row     func(n int) []any // row number n, 0 <= n < rows
}

func (s Spec) tables() []table {
	h := max(s.History, 1)
	return []table{{
		name: "proxyline_proxy",
		columns: []string{"addr", "scheme", "proxy", "protocol", "class", "err", "exit_ip", "anonymity",
			"connect_ms", "total_ms", "checked_at", "job_id"},
		rows: s.Proxies,
		row: func(i int) []any {
			c := s.checkOf(i, h-1)
			return []any{c.addr, c.scheme, c.proxy, c.protocol, c.class, c.err, c.exitIP, c.anon, c.connectMS, c.totalMS, c.at, c.job}
		},
	}, {
		name: "proxyline_check",
		columns: []string{"job_id", "addr", "scheme", "attempt", "worker", "protocol", "class", "err", "exit_ip",
			"anonymity", "connect_ms", "total_ms", "checked_at"},
		rows: s.Proxies * h,
		row: func(n int) []any {
			c := s.checkOf(n/h, n%h)
			return []any{c.job, c.addr, c.scheme, 1, "gen/1/1", c.protocol, c.class, c.err, c.exitIP, c.anon, c.connectMS, c.totalMS, c.at}
		},
	}, {
		name:    "proxyline_geo",
		columns: []string{"addr", "country", "city", "asn", "as_org", "updated_at"},
		rows:    s.Proxies,
		row: func(i int) []any {
			c := s.checkOf(i, 0)
			r := rand.New(rand.NewPCG(uint64(i), 1<<41))
			if r.IntN(10) >= 8 {
				return nil // no geo information
			}
			k := min(r.IntN(len(Countries)), r.IntN(len(Countries))) // the first ones most often
			return []any{c.addr, Countries[k], "City " + strconv.Itoa(r.IntN(50)), int64(1000 + r.IntN(5000)), "AS org", c.at}
		},
	}, {
		name:    "proxyline_source_proxy",
		columns: []string{"source", "addr", "scheme", "first_seen", "last_seen"},
		rows:    s.Proxies * 2,
		row: func(n int) []any {
			i, second := n/2, n%2 == 1
			c := s.checkOf(i, 0)
			src := i % max(s.Sources, 1)
			if second {
				if i%10 >= 3 || s.Sources < 2 {
					return nil
				}
				src = (src + 1 + i%(s.Sources-1)) % s.Sources
			}
			last := s.checkOf(i, h-1).at
			return []any{fmt.Sprintf("source-%02d", src), c.addr, c.scheme, c.at, last}
		},
	}}
}

// generateSQLite inserts every table in one transaction, 500 rows a statement.
func generateSQLite(ctx context.Context, path string, tables []table) error {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(OFF)")
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	for _, t := range tables {
		if err := insertSQLite(ctx, tx, t); err != nil {
			return fmt.Errorf("generate %s: %w", t.name, err)
		}
	}
	// No ANALYZE: proxyline never runs it on SQLite, so the planner must choose well without
	// statistics, as it does in production.
	return tx.Commit()
}

func insertSQLite(ctx context.Context, tx *sql.Tx, t table) error {
	const batch = 500
	one := "(?" + strings.Repeat(", ?", len(t.columns)-1) + ")"
	head := "INSERT INTO " + t.name + " (" + strings.Join(t.columns, ", ") + ") VALUES "
	var args []any
	flush := func(n int) error {
		if n == 0 {
			return nil
		}
		q := head + one + strings.Repeat(", "+one, n-1)
		_, err := tx.ExecContext(ctx, q, args...)
		args = args[:0]
		return err
	}
	n := 0
	for i := range t.rows {
		row := t.row(i)
		if row == nil {
			continue
		}
		args = append(args, row...)
		if n++; n == batch {
			if err := flush(n); err != nil {
				return err
			}
			n = 0
		}
	}
	return flush(n)
}

// generatePostgres copies every table with COPY, then vacuums and analyzes them.
func generatePostgres(ctx context.Context, url string, tables []table) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, t := range tables {
		src := &copySource{t: t, i: -1}
		if _, err := conn.CopyFrom(ctx, pgx.Identifier{t.name}, t.columns, src); err != nil {
			return fmt.Errorf("generate %s: %w", t.name, err)
		}
	}
	// VACUUM (ANALYZE), not ANALYZE alone: a real pool's tables get both from autovacuum soon
	// after their inserts, and VACUUM sets the visibility map that lets an index-only scan skip
	// the table (export's walk of the listing index). Without it, every index entry of a freshly
	// COPYed table costs a heap fetch. Only the pool's tables: other schemas are not ours.
	names := make([]string, len(tables))
	for i, t := range tables {
		names[i] = t.name
	}
	_, err = conn.Exec(ctx, "VACUUM (ANALYZE) "+strings.Join(names, ", "))
	return err
}

// copySource feeds a table's rows to COPY, skipping the nil ones.
type copySource struct {
	t   table
	i   int
	row []any
}

func (c *copySource) Next() bool {
	for c.i+1 < c.t.rows {
		c.i++
		if c.row = c.t.row(c.i); c.row != nil {
			return true
		}
	}
	return false
}
func (c *copySource) Values() ([]any, error) { return c.row, nil }
func (c *copySource) Err() error             { return nil }
