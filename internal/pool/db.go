package pool

import "context"

// DB is what the pool needs from a database handle or a transaction. Queries use '?'
// placeholders; an adapter for a database that numbers them ($1, $2, ...) rewrites them.
type DB interface {
	// Exec runs a statement and returns the number of rows it changed.
	Exec(ctx context.Context, query string, args ...any) (int64, error)
	// Query runs a query. The caller closes the rows.
	Query(ctx context.Context, query string, args ...any) (Rows, error)
}

// Rows is a result set, as *sql.Rows or pgx.Rows provide it.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close() error
}
