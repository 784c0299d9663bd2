package queue

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/rivertype"

	"github.com/proxyline/proxyline/internal/pool"
	"github.com/proxyline/proxyline/internal/secret"
)

// DefaultDatabase is the database used when none is given: a SQLite file in the working directory.
const DefaultDatabase = "proxyline.db"

// Engine names.
const (
	EngineSQLite   = "sqlite"
	EnginePostgres = "postgres"
)

// Config says which database to open.
type Config struct {
	// Database is a SQLite file path (optionally "sqlite:" or "file:" prefixed) or a PostgreSQL URL
	// (postgres:// or postgresql://). Empty means DefaultDatabase.
	Database string
	// Logger receives migration and queue logs. Nil means discard.
	Logger *slog.Logger
	// Access says whether Open may create and migrate (the default, Migrate), or must find the
	// database ready (Existing, ReadOnly).
	Access Access
}

// Validate checks the database string's form.
func (c Config) Validate() error {
	_, _, err := parseDatabase(c.Database)
	return err
}

// parseDatabase returns the engine and the engine's connection string.
func parseDatabase(s string) (engine, dsn string, err error) {
	s = cmp.Or(s, DefaultDatabase)
	switch {
	case strings.HasPrefix(s, "postgres://"), strings.HasPrefix(s, "postgresql://"):
		if _, err := url.Parse(s); err != nil {
			return "", "", fmt.Errorf("database %q: %w", redact(s), err)
		}
		return EnginePostgres, s, nil
	case strings.Contains(s, "://"):
		return "", "", fmt.Errorf("database %q: want a SQLite file path or a postgres:// URL", redact(s))
	}
	if keyValueDSN.MatchString(s) {
		return "", "", fmt.Errorf("database %q looks like a PostgreSQL key=value connection string: give a postgres:// URL (or a SQLite file path)", redact(s))
	}
	path := strings.TrimPrefix(strings.TrimPrefix(s, "sqlite:"), "file:")
	if path == "" || strings.ContainsAny(path, "?#") {
		return "", "", fmt.Errorf("database %q: want a plain SQLite file path (no '?' or '#')", s)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", "", fmt.Errorf("database %q: %w", s, err)
	}
	return EngineSQLite, abs, nil
}

// keyValueDSN matches a PostgreSQL key=value connection string ("host=db user=u ..."), which
// would otherwise be taken for a SQLite file name.
var keyValueDSN = regexp.MustCompile(`^\s*[a-z_]+\s*=\s*\S*\s+[a-z_]+\s*=`)

// redact hides a database URL's passwords (user:pass@, ?password=, ...) for logs and errors.
func redact(s string) string { return secret.Redact(s) }

// Store is an open queue database: River's tables and the pool's, migrated.
type Store struct {
	engine string
	name   string // the database, password redacted
	log    *slog.Logger
	eng    engine
}

// engine is the part that differs by River driver. riverEngine implements it for both.
type engine interface {
	db() pool.DB
	migrate(ctx context.Context) (riverVersions, poolVersions []int, err error)
	// checkSchema says whether every migration is applied, changing nothing.
	checkSchema(ctx context.Context) error
	insertMany(ctx context.Context, params []river.InsertManyParams) ([]*rivertype.JobInsertResult, error)
	// insertManyThen inserts jobs and runs then in the same transaction (txn.go).
	insertManyThen(ctx context.Context, params []river.InsertManyParams, then func(pool.DB, []*rivertype.JobInsertResult) error) error
	// tx runs fn in one transaction (txn.go).
	tx(ctx context.Context, fn func(pool.DB) error) error
	newClient(cfg *river.Config) (riverClient, error)
	// fencedExecutor is what a worker's River client with ID self writes through (fence.go).
	fencedExecutor(self string) riverdriver.Executor
	ui(ctx context.Context, log *slog.Logger, prefix string) (http.Handler, error)
	// inJobTx runs fn in a transaction that also completes job, if job is still running its
	// attempt (fencing: a job handed back to the queue meanwhile is left alone, ErrJobLost).
	inJobTx(ctx context.Context, job *rivertype.JobRow, fn func(pool.DB) error) error
	// dialect says which SQL flavour the few engine-specific statements use.
	dialect() dialect
	// checkFile reports an error when the database is a file that is no longer the one opened
	// (removed, or replaced by another file at the same path). Nil for PostgreSQL.
	checkFile() error
	close()
}

// riverClient is the non-generic part of *river.Client the worker uses.
type riverClient interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	StopAndCancel(ctx context.Context) error
	Stopped() <-chan struct{}
	ID() string
}

// ErrJobLost says that a job's result was not written because the job no longer belonged to this
// attempt (it was handed back and maybe taken by another worker).
var ErrJobLost = errors.New("job no longer running this attempt")

// Open opens the database. With Access Migrate (the default) it creates a missing SQLite file
// and migrates; otherwise the database must exist with its schema up to date (ErrNoDatabase,
// ErrNoSchema). A SQLite path that cannot be opened gives an error naming the path and the cause.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	kind, dsn, err := parseDatabase(cfg.Database)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{engine: kind, log: log}
	switch kind {
	case EngineSQLite:
		s.name = dsn
		if err := checkSQLitePath(dsn, cfg.Access); err != nil {
			return nil, err
		}
		if cfg.Access == Existing {
			// Opening read-write sets WAL mode, a write: look read-only first, so that a file
			// that is not our queue is left exactly as it is.
			if err := checkSQLiteSchema(ctx, dsn, log); err != nil {
				return nil, err
			}
		}
		s.eng, err = openSQLite(ctx, dsn, cfg.Access == ReadOnly, log)
	default:
		s.name = redact(dsn)
		s.eng, err = openPostgres(ctx, dsn, cfg.Access == ReadOnly, log)
	}
	if err != nil {
		return nil, err
	}
	if cfg.Access != Migrate {
		if err := s.eng.checkSchema(ctx); err != nil {
			s.eng.close()
			return nil, fmt.Errorf("%s database %s: %w", kind, s.name, err)
		}
		return s, nil
	}
	riverVersions, own, err := s.eng.migrate(ctx)
	if err != nil {
		s.eng.close()
		return nil, fmt.Errorf("migrate %s database %s: %w", kind, s.name, err)
	}
	if len(riverVersions) > 0 || len(own) > 0 {
		log.Info("migrated database", "engine", kind, "database", s.name,
			"river_versions", riverVersions, "pool_versions", own)
	}
	return s, nil
}

// Engine returns EngineSQLite or EnginePostgres.
func (s *Store) Engine() string { return s.engine }

// Name returns the database's path or URL, password redacted.
func (s *Store) Name() string { return s.name }

// DB returns a handle for reads and writes outside job transactions (pool queries, status).
func (s *Store) DB() pool.DB { return s.eng.db() }

// UI returns River's web UI (riverqueue.com/riverui) for this database as an http.Handler,
// serving under prefix ("" for the root). Its background work ends with ctx.
func (s *Store) UI(ctx context.Context, prefix string) (http.Handler, error) {
	return s.eng.ui(ctx, s.log, prefix)
}

// Close closes the database. Stop every Worker on the store first.
func (s *Store) Close() { s.eng.close() }
