package queue

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/proxyline/proxyline/internal/pool"
)

// migrationLockKey is the advisory lock key that serialises migrations ("proxylin" in ASCII).
const migrationLockKey int64 = 0x70726f78796c696e

func openPostgres(ctx context.Context, dsn string, readOnly bool, log *slog.Logger) (engine, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse postgres url %s: %w", redact(dsn), err)
	}
	if readOnly {
		// Every transaction of the session is read-only: the server refuses any write.
		cfg.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	}
	p, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", redact(dsn), err)
	}
	if err := p.Ping(ctx); err != nil {
		p.Close()
		return nil, fmt.Errorf("connect to %s: %w", redact(dsn), err)
	}
	e := &riverEngine[*riverpgxv5.Driver, pgx.Tx]{
		driver: riverpgxv5.New(p),
		plain:  pgxDB{p},
		dial:   dialectPostgres,
		log:    log,
		begin:  func(ctx context.Context) (pgx.Tx, error) { return p.Begin(ctx) },
		commit: func(ctx context.Context, tx pgx.Tx) error { return tx.Commit(ctx) },
		abort:  func(ctx context.Context, tx pgx.Tx) error { return tx.Rollback(ctx) },
		wrap:   func(tx pgx.Tx) pool.DB { return pgxDB{tx} },
		lock: func(ctx context.Context) (func(), error) {
			conn, err := p.Acquire(ctx)
			if err != nil {
				return nil, fmt.Errorf("acquire connection for migration lock: %w", err)
			}
			if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrationLockKey); err != nil {
				conn.Release()
				return nil, fmt.Errorf("take migration lock: %w", err)
			}
			return func() {
				_, _ = conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, migrationLockKey)
				conn.Release()
			}, nil
		},
		closeDB: p.Close,
	}
	return e, nil
}
