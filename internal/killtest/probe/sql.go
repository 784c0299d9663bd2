package probe

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite" // SQLite driver ("sqlite"), pure Go
)

// SQLCount runs query (one row, one numeric column) and returns the number.
func SQLCount(ctx context.Context, driver, dsn, query string) (float64, error) {
	rows, err := SQLRows(ctx, driver, dsn, query)
	if err != nil {
		return 0, err
	}
	if len(rows) != 1 || len(rows[0]) != 1 {
		return 0, fmt.Errorf("sql probe %q: want one row with one column, got %d rows", query, len(rows))
	}
	var v float64
	if _, err := fmt.Sscan(rows[0][0], &v); err != nil {
		return 0, fmt.Errorf("sql probe %q: %q is not a number", query, rows[0][0])
	}
	return v, nil
}

// SQLRows runs query and returns every row as text (NULL is ""). For sqlite, dsn is a file
// path that must exist (a probe never creates a database); for postgres, a pgx connection string.
func SQLRows(ctx context.Context, driver, dsn, query string) ([][]string, error) {
	switch driver {
	case "sqlite":
		return sqliteRows(ctx, dsn, query)
	case "postgres":
		return pgRows(ctx, dsn, query)
	}
	return nil, fmt.Errorf("sql probe: unknown driver %q (want sqlite or postgres)", driver)
}

func sqliteRows(ctx context.Context, path, query string) ([][]string, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("sql probe: sqlite database %s: %w", path, err)
	}
	dsn := "file:" + path + "?_pragma=busy_timeout(5000)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sql probe: open sqlite %s: %w", path, err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("sql probe: query %s: %q: %w", path, query, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, fmt.Errorf("sql probe: columns of %q: %w", query, err)
	}
	var out [][]string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, fmt.Errorf("sql probe: scan %q: %w", query, err)
		}
		row := make([]string, len(cols))
		for i, v := range vals {
			row[i] = v.String
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sql probe: rows of %q on %s: %w", query, path, err)
	}
	return out, nil
}

func pgRows(ctx context.Context, dsn, query string) ([][]string, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("sql probe: connect postgres %s: %w", redactDSN(dsn), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("sql probe: query postgres %q: %w", query, err)
	}
	defer rows.Close()
	var out [][]string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return nil, fmt.Errorf("sql probe: values of %q: %w", query, err)
		}
		row := make([]string, len(vals))
		for i, v := range vals {
			if v != nil {
				row[i] = fmt.Sprint(v)
			}
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sql probe: rows of %q: %w", query, err)
	}
	return out, nil
}

// redactDSN hides a password in a connection string for error messages.
func redactDSN(dsn string) string {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return "(unparsable dsn)"
	}
	if cfg.Password != "" {
		return strings.ReplaceAll(dsn, cfg.Password, "***")
	}
	return dsn
}
