package queue_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"
)

// binary is the proxyline binary the process tests run, built once by TestMain (with -race when
// the tests run with it). Empty when the build failed: process tests then fail with buildErr.
var (
	binary   string
	buildErr error
	// fakeChecker is internal/check/external's stand-in for mubeng, for the exec backend.
	fakeChecker string
)

func TestMain(m *testing.M) {
	code := func() int {
		dir, err := os.MkdirTemp("", "proxyline-queue-test-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		binary, buildErr = buildBinary(dir)
		if buildErr == nil {
			fakeChecker, buildErr = build(dir, "fakechecker", "./internal/check/external/testdata/fakechecker", false)
		}
		return m.Run()
	}()
	// goleak after the tests, as VerifyTestMain does, but after our cleanup too.
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

func buildBinary(dir string) (string, error) {
	return build(dir, "proxyline", "./cmd/proxyline", raceEnabled)
}

// build builds the package pkg (relative to the module root) into dir/name.
func build(dir, name, pkg string, race bool) (string, error) {
	out := filepath.Join(dir, name)
	args := []string{"build", "-o", out}
	if race {
		args = append(args, "-race")
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return out, nil
}

// engines are the databases every store test runs on.
var engines = []string{"sqlite", "postgres"}

// database returns a fresh database of the engine for t: a SQLite file in t.TempDir(), or a new
// schema in the PostgreSQL database "test" at 127.0.0.1:5432, dropped when t ends. Without
// PostgreSQL the test is skipped, unless CI is set: then it fails.
func database(t testing.TB, engine string) string {
	t.Helper()
	if engine == "sqlite" {
		return filepath.Join(t.TempDir(), "queue.db")
	}
	const base = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("PostgreSQL at 127.0.0.1:5432 unreachable (CI is set): %v", err)
		}
		t.Skipf("PostgreSQL at 127.0.0.1:5432 unreachable: %v", err)
	}
	defer conn.Close(context.Background())
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "plq_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return base + "&search_path=" + schema
}
