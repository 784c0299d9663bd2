package queue_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/queue"
)

// TestOpenExistingNeverCreates: Existing and ReadOnly find a database or fail clearly; they never
// create a file or a table.
func TestOpenExistingNeverCreates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	notDir := filepath.Join(dir, "file")
	if err := os.WriteFile(notDir, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		db   string
		want error
		says string
	}{
		{"missing file", filepath.Join(dir, "typo.db"), queue.ErrNoDatabase, "does not exist"},
		{"missing directory", filepath.Join(dir, "nodir", "q.db"), queue.ErrNoDatabase, "does not exist"},
		{"a directory", dir, queue.ErrNoDatabase, "is a directory"},
		{"under a file", filepath.Join(notDir, "q.db"), queue.ErrNoDatabase, "not a directory"},
		{"empty file", empty, queue.ErrNoSchema, "no River tables"},
	}
	for _, tt := range tests {
		for _, access := range []queue.Access{queue.Existing, queue.ReadOnly} {
			_, err := queue.Open(ctx, queue.Config{Database: tt.db, Access: access})
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.says) {
				t.Errorf("%s (access %d): %v, want %v saying %q", tt.name, access, err, tt.want, tt.says)
			}
		}
	}
	for _, gone := range []string{"typo.db", "typo.db-wal", "nodir"} {
		if _, err := os.Stat(filepath.Join(dir, gone)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s was created: %v", gone, err)
		}
	}
	if fi, err := os.Stat(empty); err != nil || fi.Size() != 0 {
		t.Errorf("empty database written to: %v %v", fi, err)
	}
	// A command that creates says why it cannot.
	_, err := queue.Open(ctx, queue.Config{Database: filepath.Join(dir, "nodir", "q.db")})
	if !errors.Is(err, queue.ErrNoDatabase) || !strings.Contains(err.Error(), "directory "+filepath.Join(dir, "nodir")+" does not exist") {
		t.Errorf("create under a missing directory: %v", err)
	}
}

// TestOpenReadOnly: a migrated database opens read-only on both engines, is readable, and refuses
// writes; a PostgreSQL schema without tables is ErrNoSchema and stays empty.
func TestOpenReadOnly(t *testing.T) {
	onEngines(t, func(t *testing.T, ctx context.Context, engine string) {
		db := database(t, engine)
		if engine == "postgres" {
			_, err := queue.Open(ctx, queue.Config{Database: db, Access: queue.ReadOnly})
			if !errors.Is(err, queue.ErrNoSchema) {
				t.Fatalf("empty schema: %v", err)
			}
		}
		rw := open(t, db)
		if _, err := rw.EnqueueChecks(ctx, queue.Split(proxies(3), "t", 2), queue.CheckOptions{Judge: "http://127.0.0.2:1/"}); err != nil {
			t.Fatal(err)
		}
		ro, err := queue.Open(ctx, queue.Config{Database: db, Access: queue.ReadOnly})
		if err != nil {
			t.Fatal(err)
		}
		defer ro.Close()
		s, err := ro.Status(ctx)
		if err != nil || s.Jobs["available"] != 2 {
			t.Fatalf("status read-only: %+v, %v", s, err)
		}
		if _, err := ro.DB().Exec(ctx, `DELETE FROM river_job`); err == nil {
			t.Error("a read-only store deleted jobs")
		}
		if s, err := rw.Status(ctx); err != nil || s.Jobs["available"] != 2 {
			t.Errorf("jobs after the refused write: %+v, %v", s, err)
		}
	})
}

// TestOpenReadOnlyOlderSchema: a database one River migration or one pool migration behind this
// binary is ErrNoSchema for a read-only open, on both engines, saying which part is behind (the
// quick check reads the newest migration rows; it must not let an older schema through).
func TestOpenReadOnlyOlderSchema(t *testing.T) {
	onEngines(t, func(t *testing.T, ctx context.Context, engine string) {
		for _, tt := range []struct{ table, where, says string }{
			{"river_migration", "line = 'main'", "River's schema is older"},
			{"proxyline_migration", "1 = 1", "the pool's tables are missing or older"},
		} {
			db := database(t, engine)
			rw := open(t, db)
			if _, err := rw.DB().Exec(ctx, `DELETE FROM `+tt.table+` WHERE `+tt.where+
				` AND version = (SELECT max(version) FROM `+tt.table+` WHERE `+tt.where+`)`); err != nil {
				t.Fatal(err)
			}
			for _, access := range []queue.Access{queue.Existing, queue.ReadOnly} {
				_, err := queue.Open(ctx, queue.Config{Database: db, Access: access})
				if !errors.Is(err, queue.ErrNoSchema) || !strings.Contains(err.Error(), tt.says) {
					t.Errorf("%s one version behind (access %d): %v, want ErrNoSchema saying %q", tt.table, access, err, tt.says)
				}
			}
		}
	})
}

// onEngines runs fn in a parallel subtest per engine, with a context bounded to a minute.
func onEngines(t *testing.T, fn func(t *testing.T, ctx context.Context, engine string)) {
	t.Parallel()
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			fn(t, ctx, engine)
		})
	}
}

// TestConfigValidate: the database strings a user may give, and what is refused (a password in
// a refused string is never shown).
func TestConfigValidate(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"", "q.db", "sqlite:q.db", "file:/tmp/q.db", "dir/my=1.db",
		"postgres://u:p@h/db", "postgresql://h/db?password=x&sslmode=disable"} {
		if err := (queue.Config{Database: ok}).Validate(); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for bad, says := range map[string]string{
		"host=db user=u password=s3cret dbname=q": "key=value",
		"mysql://u:s3cret@h/db":                   "want a SQLite file path",
		"q.db?mode=rwc":                           "no '?'",
	} {
		err := (queue.Config{Database: bad}).Validate()
		if err == nil || !strings.Contains(err.Error(), says) || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%q: %v, want an error saying %q without the password", bad, err, says)
		}
	}
}
