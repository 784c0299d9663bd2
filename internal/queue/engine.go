package queue

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"
	"riverqueue.com/riverui"

	"github.com/proxyline/proxyline/internal/pool"
)

// dialect is the SQL flavour of the database, for the few statements that differ.
type dialect int

const (
	dialectSQLite dialect = iota
	dialectPostgres
)

// riverEngine is engine for one River driver. TTx is the driver's transaction type (*sql.Tx for
// SQLite, pgx.Tx for PostgreSQL); the functions fill in what River does not abstract.
type riverEngine[TDriver riverdriver.Driver[TTx], TTx any] struct {
	driver  TDriver
	plain   pool.DB
	dial    dialect
	log     *slog.Logger
	begin   func(ctx context.Context) (TTx, error)
	commit  func(ctx context.Context, tx TTx) error
	abort   func(ctx context.Context, tx TTx) error
	wrap    func(tx TTx) pool.DB
	lock    func(ctx context.Context) (unlock func(), err error) // serialises migrations across processes
	file    func() error                                         // checkFile; nil: not a file
	closeDB func()

	inserterOnce sync.Once
	inserter     *river.Client[TTx] // set once by client(); an unstarted client for inserts and the UI
	inserterErr  error
}

// pool returns the pool package's name for the dialect.
func (d dialect) pool() pool.Dialect {
	if d == dialectPostgres {
		return pool.Postgres
	}
	return pool.SQLite
}

func (e *riverEngine[TDriver, TTx]) db() pool.DB      { return e.plain }
func (e *riverEngine[TDriver, TTx]) dialect() dialect { return e.dial }
func (e *riverEngine[TDriver, TTx]) close()           { e.closeDB() }

func (e *riverEngine[TDriver, TTx]) checkFile() error {
	if e.file == nil {
		return nil
	}
	return e.file()
}

func (e *riverEngine[TDriver, TTx]) migrate(ctx context.Context) (riverVersions, own []int, err error) {
	unlock, err := e.lock(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer unlock()
	// River's migrator logs "no migrations to apply" at info on every start; keep its warnings.
	m, err := rivermigrate.New(e.driver, &rivermigrate.Config{Logger: slog.New(minLevel{slog.LevelWarn, e.log.Handler()})})
	if err != nil {
		return nil, nil, fmt.Errorf("river migrator: %w", err)
	}
	res, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("river migrations: %w", err)
	}
	for _, v := range res.Versions {
		riverVersions = append(riverVersions, v.Version)
	}
	if !pool.Pending(ctx, e.plain) {
		return riverVersions, nil, nil
	}
	restore, err := e.bigMigrationMemory(ctx)
	if err != nil {
		return riverVersions, nil, err
	}
	defer restore()
	err = e.inTx(ctx, func(tx TTx) error {
		if e.dial == dialectPostgres {
			for _, set := range []string{pgMaintenanceMemory, pgWorkMemory} {
				if _, err := e.wrap(tx).Exec(ctx, set); err != nil {
					return fmt.Errorf("pool migration memory: %w", err)
				}
			}
		}
		own, err = pool.Migrate(ctx, e.wrap(tx), e.dial.pool())
		return err
	})
	return riverVersions, own, err
}

// Memory for a pool migration, which may build indexes and count a big pool (the counters'
// migration, pool.CountsVersion: two index builds over 1,000,000 and 1,300,000 rows, a count of
// 4,000,000 history rows, a join of every sighting with the pool). With the defaults (SQLite: a 2
// MB page cache; PostgreSQL: 64 MB for an index build, 4 MB per sort or hash) the sorts spill to
// temporary files and SQLite reads the same pages again and again. Only while migrating: the
// SQLite setting is put back after it, the PostgreSQL ones are SET LOCAL (this transaction).
const (
	sqliteMigrationCache = `PRAGMA cache_size = -524288` // KiB: up to 512 MiB, used as pages are read
	pgMaintenanceMemory  = `SET LOCAL maintenance_work_mem = '512MB'`
	pgWorkMemory         = `SET LOCAL work_mem = '256MB'`
)

// bigMigrationMemory gives a SQLite connection a big page cache until the returned function puts
// the one it had back (the store has one connection: the migration's). Nothing on PostgreSQL.
func (e *riverEngine[TDriver, TTx]) bigMigrationMemory(ctx context.Context) (func(), error) {
	if e.dial != dialectSQLite {
		return func() {}, nil
	}
	rows, err := e.plain.Query(ctx, `PRAGMA cache_size`)
	if err != nil {
		return nil, fmt.Errorf("read cache_size: %w", err)
	}
	var was int64
	ok := rows.Next() && rows.Scan(&was) == nil
	rows.Close()
	if !ok {
		return nil, errors.New("read cache_size: no value")
	}
	if _, err := e.plain.Exec(ctx, sqliteMigrationCache); err != nil {
		return nil, fmt.Errorf("set cache_size: %w", err)
	}
	return func() {
		_, _ = e.plain.Exec(context.WithoutCancel(ctx), fmt.Sprintf(`PRAGMA cache_size = %d`, was))
	}, nil
}

func (e *riverEngine[TDriver, TTx]) inTx(ctx context.Context, fn func(tx TTx) error) error {
	tx, err := e.begin(ctx)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = e.abort(context.WithoutCancel(ctx), tx)
		return err
	}
	if err := e.commit(ctx, tx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func (e *riverEngine[TDriver, TTx]) client() (*river.Client[TTx], error) {
	e.inserterOnce.Do(func() {
		e.inserter, e.inserterErr = river.NewClient(e.driver, &river.Config{Logger: e.log})
		if e.inserterErr != nil {
			e.inserterErr = fmt.Errorf("river client: %w", e.inserterErr)
		}
	})
	return e.inserter, e.inserterErr
}

func (e *riverEngine[TDriver, TTx]) insertMany(ctx context.Context, params []river.InsertManyParams) ([]*rivertype.JobInsertResult, error) {
	c, err := e.client()
	if err != nil {
		return nil, err
	}
	var res []*rivertype.JobInsertResult
	err = e.inTx(ctx, func(tx TTx) error {
		var err error
		res, err = c.InsertManyTx(ctx, tx, params)
		if err != nil {
			return fmt.Errorf("insert %d jobs: %w", len(params), err)
		}
		return nil
	})
	return res, err
}

// newClient returns a worker's River client, on a fenced driver (see fence.go): no write about a
// job lands unless the job still runs the attempt of the execution that makes it, by this client.
func (e *riverEngine[TDriver, TTx]) newClient(cfg *river.Config) (riverClient, error) {
	cfg.Middleware = append(cfg.Middleware, &fenceMiddleware{})
	c, err := river.NewClient[TTx](e.fenced(cfg.ID, cmp.Or(cfg.Logger, e.log)), cfg)
	if err != nil {
		return nil, fmt.Errorf("river client: %w", err)
	}
	return c, nil
}

// fenced returns the engine's driver, fenced for the River client whose ID is self.
func (e *riverEngine[TDriver, TTx]) fenced(self string, log *slog.Logger) *fencedDriver[TTx] {
	return &fencedDriver[TTx]{Driver: e.driver, f: newFence(self, e.dial, log)}
}

func (e *riverEngine[TDriver, TTx]) fencedExecutor(self string) riverdriver.Executor {
	return e.fenced(self, e.log).GetExecutor()
}

func (e *riverEngine[TDriver, TTx]) inJobTx(ctx context.Context, row *rivertype.JobRow, fn func(pool.DB) error) error {
	return e.inTx(ctx, func(tx TTx) error {
		db := e.wrap(tx)
		// Fencing: the attempt number and the client that fetched it are the job's epoch (see
		// fence.go). A job handed back to the queue (by a rescuer or a stop) and maybe running
		// elsewhere has another state, attempt or client; its results from this run are dropped.
		by := ""
		if len(row.AttemptedBy) > 0 {
			by = row.AttemptedBy[len(row.AttemptedBy)-1]
		}
		n, err := db.Exec(ctx, `UPDATE river_job AS j SET attempt = attempt WHERE id = ? AND state = 'running' AND attempt = ? AND `+
			lastAttemptedBy(e.dial)+` = ?`, row.ID, row.Attempt, by)
		if err != nil {
			return fmt.Errorf("fence job %d: %w", row.ID, err)
		}
		if n != 1 {
			return fmt.Errorf("job %d attempt %d: %w", row.ID, row.Attempt, ErrJobLost)
		}
		if err := fn(db); err != nil {
			return err
		}
		job := &river.Job[CheckArgs]{JobRow: row}
		if _, err := river.JobCompleteTx[TDriver](ctx, tx, job); err != nil {
			return fmt.Errorf("complete job %d: %w", row.ID, err)
		}
		return nil
	})
}

func (e *riverEngine[TDriver, TTx]) ui(ctx context.Context, log *slog.Logger, prefix string) (http.Handler, error) {
	c, err := e.client()
	if err != nil {
		return nil, err
	}
	h, err := riverui.NewHandler(&riverui.HandlerOpts{
		Endpoints: riverui.NewEndpoints(c, nil),
		Logger:    log,
		Prefix:    prefix,
	})
	if err != nil {
		return nil, fmt.Errorf("river ui: %w", err)
	}
	if err := h.Start(ctx); err != nil {
		return nil, fmt.Errorf("start river ui: %w", err)
	}
	return h, nil
}

// minLevel drops records below a level before they reach h.
type minLevel struct {
	min slog.Level
	h   slog.Handler
}

func (m minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= m.min && m.h.Enabled(ctx, l)
}
func (m minLevel) Handle(ctx context.Context, r slog.Record) error { return m.h.Handle(ctx, r) }
func (m minLevel) WithAttrs(as []slog.Attr) slog.Handler           { return minLevel{m.min, m.h.WithAttrs(as)} }
func (m minLevel) WithGroup(n string) slog.Handler                 { return minLevel{m.min, m.h.WithGroup(n)} }
