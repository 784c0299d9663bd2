package queue

import (
	"context"
	"fmt"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/proxyline/proxyline/internal/pool"
)

// InTx runs fn in one transaction of the queue's database: committed when fn returns nil,
// rolled back otherwise. For writes to the pool's tables that must land together (the schedule
// of `proxyline run`).
func (s *Store) InTx(ctx context.Context, fn func(db pool.DB) error) error { return s.eng.tx(ctx, fn) }

// EnqueueChecksThen is EnqueueChecks with then run in the same transaction, after the inserts,
// with the new job ids (one per chunk, in order): the jobs and what then writes commit together
// or not at all.
func (s *Store) EnqueueChecksThen(ctx context.Context, chunks []Chunk, opts CheckOptions, then func(db pool.DB, ids []int64) error) ([]int64, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	params := make([]river.InsertManyParams, len(chunks))
	for i, c := range chunks {
		params[i] = river.InsertManyParams{Args: CheckArgs{Proxies: c.Proxies, Options: opts, Source: c.Source}}
	}
	var ids []int64
	err := s.eng.insertManyThen(ctx, params, func(db pool.DB, res []*rivertype.JobInsertResult) error {
		ids = make([]int64, len(res))
		for i, r := range res {
			ids[i] = r.Job.ID
		}
		return then(db, ids)
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}

func (e *riverEngine[TDriver, TTx]) tx(ctx context.Context, fn func(db pool.DB) error) error {
	return e.inTx(ctx, func(tx TTx) error { return fn(e.wrap(tx)) })
}

func (e *riverEngine[TDriver, TTx]) insertManyThen(ctx context.Context, params []river.InsertManyParams,
	then func(db pool.DB, res []*rivertype.JobInsertResult) error) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	return e.inTx(ctx, func(tx TTx) error {
		res, err := c.InsertManyTx(ctx, tx, params)
		if err != nil {
			return fmt.Errorf("insert %d jobs: %w", len(params), err)
		}
		return then(e.wrap(tx), res)
	})
}
