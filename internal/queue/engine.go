package queue

import (
	"context"
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
	closeDB func()

	inserterOnce sync.Once
	inserter     *river.Client[TTx] // set once by client(); an unstarted client for inserts and the UI
	inserterErr  error
}

func (e *riverEngine[TDriver, TTx]) db() pool.DB      { return e.plain }
func (e *riverEngine[TDriver, TTx]) dialect() dialect { return e.dial }
func (e *riverEngine[TDriver, TTx]) close()           { e.closeDB() }

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
	err = e.inTx(ctx, func(tx TTx) error {
		own, err = pool.Migrate(ctx, e.wrap(tx))
		return err
	})
	return riverVersions, own, err
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

func (e *riverEngine[TDriver, TTx]) newClient(cfg *river.Config) (riverClient, error) {
	c, err := river.NewClient(e.driver, cfg)
	if err != nil {
		return nil, fmt.Errorf("river client: %w", err)
	}
	return c, nil
}

func (e *riverEngine[TDriver, TTx]) inJobTx(ctx context.Context, row *rivertype.JobRow, fn func(pool.DB) error) error {
	return e.inTx(ctx, func(tx TTx) error {
		db := e.wrap(tx)
		// Fencing: the attempt number is the job's epoch. A job handed back to the queue (by
		// the local rescuer, River's rescuer or a stop) and maybe running elsewhere has a
		// different state or attempt; its results from this run are dropped.
		n, err := db.Exec(ctx, `UPDATE river_job SET attempt = attempt WHERE id = ? AND state = 'running' AND attempt = ?`,
			row.ID, row.Attempt)
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
