package queue

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/riverqueue/river/rivermigrate"
	"golang.org/x/sys/unix"

	"github.com/proxyline/proxyline/internal/pool"
)

// Access says what Open may do to the database.
type Access int

const (
	// Migrate creates a missing SQLite file and applies missing migrations: the commands that
	// make a queue (enqueue, worker). The zero value.
	Migrate Access = iota
	// Existing opens an existing database read-write, creating and migrating nothing: a missing
	// SQLite file is ErrNoDatabase, a database without proxyline's tables or with migrations not
	// yet applied is ErrNoSchema (ui, which can retry and cancel jobs).
	Existing
	// ReadOnly is Existing, opened read-only: SQLite with mode=ro, so nothing can be written
	// (status, export). SQLite still makes the -wal and -shm files it needs to read a WAL
	// database when they are missing and the directory allows it.
	ReadOnly
)

// Errors of Open for a database that is not there to be read, for errors.Is.
var (
	// ErrNoDatabase: the SQLite file (or its directory) does not exist, or is not a file.
	ErrNoDatabase = errors.New("no such database")
	// ErrNoSchema: the database exists but holds no proxyline queue, or an older one that a
	// command that migrates (enqueue, worker) must bring up to date first.
	ErrNoSchema = errors.New("no up-to-date proxyline queue in the database")
)

// checkSQLitePath explains, before SQLite gets to say "unable to open database file (14)", why
// the file at path cannot be opened with access: it does not exist (and access does not create
// it), its directory does not exist, something is not a file or a directory as it should be, or a
// permission is missing. The error names the path and the cause; fs errors are wrapped
// (fs.ErrPermission for a permission problem).
func checkSQLitePath(path string, access Access) error {
	dir := filepath.Dir(path)
	fi, err := os.Stat(path)
	switch {
	case err == nil && fi.IsDir():
		return fmt.Errorf("database %s is a directory, not a SQLite file: %w", path, ErrNoDatabase)
	case err == nil:
		mode := unix.R_OK
		if access != ReadOnly {
			mode |= unix.W_OK
		}
		if err := unix.Access(path, uint32(mode)); err != nil {
			return fmt.Errorf("database %s: %w", path, &fs.PathError{Op: "access", Path: path, Err: err})
		}
		return nil
	case errors.Is(err, fs.ErrNotExist) && access != Migrate:
		if _, derr := os.Stat(dir); derr != nil && !errors.Is(derr, fs.ErrNotExist) {
			return fmt.Errorf("database %s: %w", path, derr)
		}
		return fmt.Errorf("database %s does not exist (this command never creates one: check --database; enqueue and worker create it): %w",
			path, ErrNoDatabase)
	case errors.Is(err, fs.ErrNotExist):
		di, derr := os.Stat(dir)
		if derr != nil {
			if errors.Is(derr, fs.ErrNotExist) {
				return fmt.Errorf("database %s: directory %s does not exist: %w", path, dir, ErrNoDatabase)
			}
			return fmt.Errorf("database %s: %w", path, derr)
		}
		if !di.IsDir() {
			return fmt.Errorf("database %s: %s is not a directory: %w", path, dir, ErrNoDatabase)
		}
		if err := unix.Access(dir, unix.W_OK|unix.X_OK); err != nil {
			return fmt.Errorf("database %s cannot be created: %w", path, &fs.PathError{Op: "access", Path: dir, Err: err})
		}
		return nil
	default:
		// Most often a directory on the way that we may not search (EACCES) or a file on the
		// way that is not a directory (ENOTDIR).
		if errors.Is(err, unix.ENOTDIR) {
			return fmt.Errorf("database %s: %w: %w", path, err, ErrNoDatabase)
		}
		return fmt.Errorf("database %s: %w", path, err)
	}
}

// sqliteReadOnlyDirectory is SQLITE_READONLY_DIRECTORY: a WAL database opened read-only whose
// -shm file does not exist and may not be created.
const sqliteReadOnlyDirectory = 1544

// explainSQLiteOpen returns SQLite's error opening path with the cause SQLite does not name.
func explainSQLiteOpen(path string, err error) error {
	var se interface{ Code() int }
	if errors.As(err, &se) && se.Code() == sqliteReadOnlyDirectory {
		return fmt.Errorf("database %s: reading a WAL database needs %s-shm, which this user may not create in %s "+
			"(read it as the user who owns it, or while a worker runs on it): %w",
			path, path, filepath.Dir(path), &fs.PathError{Op: "create", Path: path + "-shm", Err: fs.ErrPermission})
	}
	return fmt.Errorf("open sqlite %s: %w", path, err)
}

// checkSQLiteSchema opens the SQLite file read-only and checks its schema.
func checkSQLiteSchema(ctx context.Context, path string, log *slog.Logger) error {
	e, err := openSQLite(ctx, path, true, log)
	if err != nil {
		return err
	}
	defer e.close()
	if err := e.checkSchema(ctx); err != nil {
		return fmt.Errorf("%s database %s: %w", EngineSQLite, path, err)
	}
	return nil
}

// checkSchema verifies, without changing anything, that River's migrations and the pool's are all
// applied.
func (e *riverEngine[TDriver, TTx]) checkSchema(ctx context.Context) error {
	m, err := rivermigrate.New(e.driver, &rivermigrate.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return fmt.Errorf("river migrator: %w", err)
	}
	if !riverUpToDate(ctx, e.plain, m.AllVersions()) {
		if err := explainRiverSchema(ctx, m); err != nil {
			return err
		}
	}
	if pool.Pending(ctx, e.plain) {
		return fmt.Errorf("%w: the pool's tables are missing or older than this proxyline's; run enqueue or a worker once, they migrate them",
			ErrNoSchema)
	}
	return nil
}

// explainRiverSchema asks River's migrator whether its schema is there and up to date, and says
// what is wrong (nil when nothing is).
func explainRiverSchema[TTx any](ctx context.Context, m *rivermigrate.Migrator[TTx]) error {
	existing, err := m.ExistingVersions(ctx)
	if err != nil {
		return fmt.Errorf("read River's migrations: %w", err)
	}
	if len(existing) == 0 {
		return fmt.Errorf("%w: no River tables (is --database right? enqueue and worker create them)", ErrNoSchema)
	}
	res, err := m.Validate(ctx, nil)
	if err != nil {
		return fmt.Errorf("read River's migrations: %w", err)
	}
	if !res.OK {
		return fmt.Errorf("%w: River's schema is older than this proxyline's (%v); run enqueue or a worker once, they migrate it",
			ErrNoSchema, res.Messages)
	}
	return nil
}

// riverUpToDate reads the newest of River's applied migrations (main line) in one query and says
// whether it is the newest this binary knows: migrations are applied in order, so then they all
// are. False when it is older or cannot be read; the caller then asks River's migrator, which
// explains. River's own check (ExistingVersions, then Validate) asks information_schema whether
// river_migration has its line column, twice: on a new PostgreSQL connection, with the catalog
// not yet cached, that took 200-330 ms of a 1.3 s proxyline status (measured at load 30).
func riverUpToDate(ctx context.Context, db pool.DB, known []rivermigrate.Migration) bool {
	if len(known) == 0 {
		return false
	}
	rows, err := db.Query(ctx, `SELECT max(version) FROM river_migration WHERE line = 'main'`)
	if err != nil {
		return false
	}
	defer rows.Close()
	var v *int64
	if !rows.Next() || rows.Scan(&v) != nil || v == nil {
		return false
	}
	return int(*v) >= known[len(known)-1].Version
}
