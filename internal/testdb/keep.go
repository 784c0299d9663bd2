package testdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/proxyline/proxyline/internal/pool"
	"github.com/proxyline/proxyline/internal/queue"
)

// KeepEnv names the environment variable that makes Kept keep a generated database between runs:
// a directory for the SQLite files (PostgreSQL keeps a schema named after the database).
const KeepEnv = "PROXYLINE_BENCH_KEEP"

// markerTable records, in a generated database, the Spec it was generated with: written last, so
// a database without it was not generated to the end.
const markerTable = "proxyline_bench_spec"

var keptName = regexp.MustCompile(`^[a-z0-9_]+$`)

// Kept returns the --database string of a database of engine named name (lower case letters,
// digits, _) that survives the run when the environment variable KeepEnv is set: a SQLite file in
// that directory, or the PostgreSQL schema plg_keep_<name> in the test database (drop it by hand
// when done). Without KeepEnv it is Database(t, engine). Pass it to Prepare.
func Kept(t testing.TB, engine, name string) string {
	t.Helper()
	dir := os.Getenv(KeepEnv)
	if dir == "" {
		return Database(t, engine)
	}
	if !keptName.MatchString(name) {
		t.Fatalf("kept database name %q: only a-z, 0-9 and _", name)
	}
	if engine == queue.EngineSQLite {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatalf("%s=%s: %v", KeepEnv, dir, err)
		}
		return filepath.Join(dir, name+".db")
	}
	schema := "plg_keep_" + name
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn := connectPostgres(t, ctx)
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+schema); err != nil {
		t.Fatalf("create schema %s: %v", schema, err)
	}
	return postgresBase + "&search_path=" + schema
}

// Prepare makes db hold the pool of spec, one migration short (as Generate leaves it). A database
// that Generate filled to the end with the same numbers (a Kept one, from an earlier run) is
// reused: its counters' migration is undone, and the Spec returned carries the Now it was
// generated with. Anything else there is thrown away and generated again. reused says which.
func Prepare(ctx context.Context, db string, spec Spec) (out Spec, reused bool, err error) {
	if now, ok := generatedWith(ctx, db, spec); ok {
		spec.Now = now
		if err := undoCounts(ctx, db); err != nil {
			return spec, false, err
		}
		return spec, true, nil
	}
	if err := wipe(ctx, db); err != nil {
		return spec, false, err
	}
	if err := Generate(ctx, db, spec); err != nil {
		return spec, false, err
	}
	return spec, false, mark(ctx, db, spec)
}

// undoCounts opens db, migrating it (nothing to do unless an earlier run stopped between undoing
// the counters and applying them again), and undoes the counters' migration.
func undoCounts(ctx context.Context, db string) error {
	st, err := queue.Open(ctx, queue.Config{Database: db})
	if err != nil {
		return err
	}
	defer st.Close()
	dialect := pool.SQLite
	if st.Engine() == queue.EnginePostgres {
		dialect = pool.Postgres
	}
	return pool.Unmigrate(ctx, st.DB(), dialect, pool.CountsVersion)
}

// markerQuery reads the marker of a spec's numbers.
const markerQuery = `SELECT now_ms FROM ` + markerTable + ` WHERE proxies = $1 AND history = $2 AND days = $3 AND sources = $4`

// generatedWith returns the Now that db's pool was generated with, if it was generated to the end
// with spec's numbers.
func generatedWith(ctx context.Context, db string, spec Spec) (time.Time, bool) {
	var ms int64
	args := []any{spec.Proxies, spec.History, spec.Days, spec.Sources}
	if isPostgres(db) {
		conn, err := pgx.Connect(ctx, db)
		if err != nil {
			return time.Time{}, false
		}
		defer conn.Close(context.WithoutCancel(ctx))
		if conn.QueryRow(ctx, markerQuery, args...).Scan(&ms) != nil {
			return time.Time{}, false
		}
		return time.UnixMilli(ms), true
	}
	if _, err := os.Stat(db); err != nil {
		return time.Time{}, false
	}
	sdb, err := sql.Open("sqlite", "file:"+db+"?mode=ro")
	if err != nil {
		return time.Time{}, false
	}
	defer sdb.Close()
	if sdb.QueryRowContext(ctx, markerQuery, args...).Scan(&ms) != nil {
		return time.Time{}, false
	}
	return time.UnixMilli(ms), true
}

// mark records that db's pool was generated to the end with spec.
func mark(ctx context.Context, db string, spec Spec) error {
	stmts := []string{
		`CREATE TABLE ` + markerTable + ` (proxies BIGINT, history BIGINT, days BIGINT, sources BIGINT, now_ms BIGINT)`,
		`INSERT INTO ` + markerTable + ` VALUES ($1, $2, $3, $4, $5)`,
	}
	args := []any{spec.Proxies, spec.History, spec.Days, spec.Sources, spec.Now.UnixMilli()}
	if isPostgres(db) {
		conn, err := pgx.Connect(ctx, db)
		if err != nil {
			return err
		}
		defer conn.Close(context.WithoutCancel(ctx))
		if _, err := conn.Exec(ctx, stmts[0]); err != nil {
			return fmt.Errorf("mark generated pool: %w", err)
		}
		_, err = conn.Exec(ctx, stmts[1], args...)
		return err
	}
	sdb, err := sql.Open("sqlite", "file:"+db+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return err
	}
	defer sdb.Close()
	if _, err := sdb.ExecContext(ctx, stmts[0]); err != nil {
		return fmt.Errorf("mark generated pool: %w", err)
	}
	_, err = sdb.ExecContext(ctx, stmts[1], args...)
	return err
}

// wipe empties db: removes the SQLite file, or drops and recreates the PostgreSQL schema of its
// search_path.
func wipe(ctx context.Context, db string) error {
	if !isPostgres(db) {
		for _, suffix := range []string{"", "-wal", "-shm", ".migrate-lock"} {
			if err := os.Remove(db + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
		return nil
	}
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	schema := conn.Config().RuntimeParams["search_path"]
	if !keptName.MatchString(schema) {
		return fmt.Errorf("wipe %s: schema %q", db, schema)
	}
	_, err = conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE; CREATE SCHEMA "+schema)
	return err
}

func isPostgres(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}
