package queue

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/proxyline/proxyline/internal/pool"
)

// sqlExecutor is what *sql.DB and *sql.Tx have in common.
type sqlExecutor interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// sqlDB adapts database/sql (SQLite) to pool.DB. x is the *sql.DB, or the *sql.Tx when tx is
// set; statements with many parameters (the pool's multi-row inserts) go through cache.
type sqlDB struct {
	x     sqlExecutor
	tx    *sql.Tx
	cache *stmtCache
}

// cachedArgs is the parameter count from which a statement is kept prepared: parsing a 100-row
// INSERT costs more than running it, and the pool writes the same few shapes over and over.
const cachedArgs = 64

func (d sqlDB) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	var res sql.Result
	var err error
	if d.cache != nil && len(args) >= cachedArgs {
		var st *sql.Stmt
		if st, err = d.cache.get(ctx, q); err != nil {
			return 0, err
		}
		if d.tx != nil {
			// On the same (only) connection, the transaction reuses the prepared statement.
			st = d.tx.StmtContext(ctx, st)
			defer st.Close()
		}
		res, err = st.ExecContext(ctx, args...)
	} else {
		res, err = d.x.ExecContext(ctx, q, args...)
	}
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// stmtCache keeps prepared statements by their text, for the life of the database handle.
// modernc's driver has no cache of its own. The pool's statements come in at most a few hundred
// shapes (one per batch size), so it needs no eviction.
type stmtCache struct {
	db *sql.DB
	mu sync.Mutex
	m  map[string]*sql.Stmt // guarded by mu
}

func (c *stmtCache) get(ctx context.Context, q string) (*sql.Stmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.m[q]; ok {
		return st, nil
	}
	st, err := c.db.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if c.m == nil {
		c.m = map[string]*sql.Stmt{}
	}
	c.m[q] = st
	return st, nil
}

// close closes every cached statement.
func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.m {
		st.Close()
	}
	c.m = nil
}

func (d sqlDB) Query(ctx context.Context, q string, args ...any) (pool.Rows, error) {
	return d.x.QueryContext(ctx, q, args...)
}

// pgxExecutor is what *pgxpool.Pool and pgx.Tx have in common.
type pgxExecutor interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// pgxDB adapts pgx (PostgreSQL) to pool.DB, numbering the '?' placeholders.
type pgxDB struct{ x pgxExecutor }

func (d pgxDB) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	tag, err := d.x.Exec(ctx, rebind(q), args...)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

func (d pgxDB) Query(ctx context.Context, q string, args ...any) (pool.Rows, error) {
	rows, err := d.x.Query(ctx, rebind(q), args...)
	if err != nil {
		return nil, err
	}
	return pgxRows{rows}, nil
}

type pgxRows struct{ pgx.Rows }

func (r pgxRows) Close() error { r.Rows.Close(); return r.Rows.Err() }

// rebind turns '?' placeholders into $1, $2, ... outside single-quoted literals. Written by hand
// because it is ten lines and our statements are our own (no '?' operators, no dollar quoting).
func rebind(q string) string {
	if !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	n, quoted := 0, false
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'':
			quoted = !quoted
		case c == '?' && !quoted:
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
