// Package testdb gives tests and benchmarks a fresh queue database on each engine: a SQLite file
// in a temporary directory, or a new schema in the PostgreSQL database "test" at 127.0.0.1:5432
// (trust authentication, user postgres), dropped when the test ends. Without PostgreSQL a test
// on it is skipped, unless the environment variable CI is set: then it fails. Generate fills a
// database with a large synthetic pool for benchmarks.
//
// Only tests import it.
package testdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/internal/pool"
	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/proxy"
)

// Engines are the engines a test of a query runs on.
var Engines = []string{queue.EngineSQLite, queue.EnginePostgres}

// postgresBase is the PostgreSQL database tests use.
const postgresBase = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// Database returns the --database string of a fresh database of engine for t. Nothing is
// created for SQLite (queue.Open creates the file); for PostgreSQL a new schema is.
func Database(t testing.TB, engine string) string {
	t.Helper()
	if engine == queue.EngineSQLite {
		return filepath.Join(t.TempDir(), "queue.db")
	}
	return postgresBase + "&search_path=" + PostgresSchema(t)
}

// PostgresSchema creates a fresh schema in the PostgreSQL test database (127.0.0.1:5432,
// database test, user postgres, trust authentication) and drops it when t ends; it returns the
// schema's name. Without PostgreSQL t is skipped, unless CI is set: then it fails.
func PostgresSchema(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn := connectPostgres(t, ctx)
	defer conn.Close(context.Background())
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "plg_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		c, err := pgx.Connect(ctx, postgresBase)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return schema
}

// connectPostgres connects to the test database, or skips t when PostgreSQL is not there (fails
// it under CI).
func connectPostgres(t testing.TB, ctx context.Context) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctx, postgresBase)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("PostgreSQL at 127.0.0.1:5432 unreachable (CI is set): %v", err)
		}
		t.Skipf("PostgreSQL at 127.0.0.1:5432 unreachable: %v", err)
	}
	return conn
}

// Open opens (creating and migrating) a fresh database of engine for t, closed when t ends.
func Open(t testing.TB, engine string) *queue.Store {
	t.Helper()
	return OpenAt(t, Database(t, engine), queue.Migrate)
}

// OpenAt opens the database db with access, closed when t ends.
func OpenAt(t testing.TB, db string, access queue.Access) *queue.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := queue.Open(ctx, queue.Config{Database: db, Access: access})
	if err != nil {
		t.Fatalf("open %s: %v", db, err)
	}
	t.Cleanup(st.Close)
	return st
}

// FillSynthetic records n live HTTP proxies (10.1.x.y:8080, n at most 65,000) into the pool of
// st, checked a minute ago, 10 ms apart in latency.
func FillSynthetic(t testing.TB, st *queue.Store, n int) {
	t.Helper()
	now := time.Now().Add(-time.Minute)
	var cs []pool.Check
	for i := range n {
		p := proxy.Proxy{Scheme: proxy.HTTP, Host: fmt.Sprintf("10.1.%d.%d", i/250, 1+i%250), Port: 8080}
		cs = append(cs, pool.Check{Given: p, Result: check.Result{Proxy: p, Class: check.Alive, Anonymity: check.Elite,
			Total: time.Duration(10*(i+1)) * time.Millisecond, CheckedAt: now}})
	}
	if err := pool.Record(context.Background(), st.DB(), pool.Source{JobID: 1, Attempt: 1, Worker: "synthetic"}, cs); err != nil {
		t.Fatal(err)
	}
}
