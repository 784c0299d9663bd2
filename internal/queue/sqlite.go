package queue

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/riverqueue/river/riverdriver/riversqlite"
	"golang.org/x/sys/unix"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver (pure Go)

	"github.com/proxyline/proxyline/internal/pool"
)

// sqliteParams are the connection settings that let several processes share one file:
//   - WAL: readers do not block the writer nor the writer the readers;
//   - busy_timeout: a process waiting for the write lock retries for up to 10 s instead of
//     failing at once with SQLITE_BUSY;
//   - _txlock=immediate: every transaction takes the write lock at BEGIN, so two transactions
//     never both read and then deadlock upgrading to write (which busy_timeout cannot resolve);
//   - synchronous=NORMAL: safe with WAL (a power cut may lose the last commits, never corrupt).
//
// With one connection per process (SetMaxOpenConns(1), as riversqlite recommends), River's own
// goroutines queue for the connection inside the process instead of fighting over the lock.
const sqliteParams = "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate"

// sqliteReadOnlyParams open an existing file for reading only: mode=ro, so that nothing, not even
// a missing file, is ever created or written; no journal mode is set (that would be a write).
const sqliteReadOnlyParams = "?mode=ro&_pragma=busy_timeout(10000)&_pragma=mmap_size(17179869184)"

func openSQLite(ctx context.Context, path string, readOnly bool, log *slog.Logger) (engine, error) {
	params := sqliteParams
	if readOnly {
		params = sqliteReadOnlyParams
	}
	db, err := sql.Open("sqlite", "file:"+path+params)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if err := firstConnect(ctx, db, path, readOnly); err != nil {
		db.Close()
		return nil, explainSQLiteOpen(path, err)
	}
	opened, err := fileID(path)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	e := &riverEngine[*riversqlite.Driver, *sql.Tx]{
		driver: riversqlite.New(db),
		plain:  sqlDB{db},
		dial:   dialectSQLite,
		log:    log,
		begin:  func(ctx context.Context) (*sql.Tx, error) { return db.BeginTx(ctx, nil) },
		commit: func(_ context.Context, tx *sql.Tx) error { return tx.Commit() },
		abort:  func(_ context.Context, tx *sql.Tx) error { return tx.Rollback() },
		wrap:   func(tx *sql.Tx) pool.DB { return sqlDB{tx} },
		lock: func(ctx context.Context) (func(), error) {
			return lockFile(ctx, path+".migrate-lock")
		},
		file:    func() error { return sameFile(path, opened) },
		closeDB: func() { db.Close() },
	}
	return e, nil
}

// firstConnect makes the first connection, which runs the parameters' pragmas. A writable open
// holds the migration lock meanwhile: on a new file, journal_mode(WAL) needs the exclusive lock,
// and SQLite answers SQLITE_BUSY at once, without waiting out busy_timeout, when two connections
// switch the same file at the same moment (3 of 40 concurrent opens of a new file failed so).
// Once the file is in WAL mode the pragma only reads it, and the lock is held for a millisecond.
// A read-only open sets no journal mode and takes no lock (it must not create the lock file).
func firstConnect(ctx context.Context, db *sql.DB, path string, readOnly bool) error {
	if !readOnly {
		unlock, err := lockFile(ctx, path+".migrate-lock")
		if err != nil {
			return err
		}
		defer unlock()
	}
	return db.PingContext(ctx)
}

// fileKey identifies a file: device and inode.
type fileKey struct{ dev, ino uint64 }

func fileID(path string) (fileKey, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return fileKey{}, err
	}
	return fileKey{dev: st.Dev, ino: st.Ino}, nil
}

// sameFile reports an error when path no longer names the file opened (taken when the
// database was opened, right after SQLite opened it). A process that goes on with a removed file
// writes where nobody else reads: jobs enqueued into a new file at the path would wait for ever
// while the workers look healthy.
func sameFile(path string, opened fileKey) error {
	now, err := fileID(path)
	switch {
	case errors.Is(err, unix.ENOENT):
		return fmt.Errorf("database file %s was removed while open (it is still written to, but nobody else can see it)", path)
	case err != nil:
		return fmt.Errorf("database file %s: %w", path, err)
	case now != opened:
		return fmt.Errorf("database file %s was replaced by another file (device %d inode %d, was device %d inode %d)",
			path, now.dev, now.ino, opened.dev, opened.ino)
	}
	return nil
}

// lockFile holds an exclusive flock on path until unlock. SQLite has no advisory locks, and River
// applies each migration in its own transaction, so two processes starting on a new file would
// both try to apply version 1; this lock makes the second wait and find the work done.
func lockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open migration lock %s: %w", path, err)
	}
	done := make(chan error, 1)
	go func() { done <- unix.Flock(int(f.Fd()), unix.LOCK_EX) }()
	select {
	case err := <-done:
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
	case <-ctx.Done():
		f.Close() // the pending flock fails with EBADF and the goroutine ends
		<-done
		return nil, fmt.Errorf("lock %s: %w", path, ctx.Err())
	}
	return func() { f.Close() }, nil
}
