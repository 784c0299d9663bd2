package run

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/proxyline/proxyline/internal/lifecycle"
	"github.com/proxyline/proxyline/internal/pool"
	"github.com/proxyline/proxyline/internal/queue"
)

// SchedulerConfig configures a Scheduler. Zero values mean the defaults named in each field's
// doc.
type SchedulerConfig struct {
	// Store is the queue and pool database. Required.
	Store *queue.Store
	// Backoff says when a checked proxy is due again. Required (Interval, Base, Max > 0).
	Backoff pool.Backoff
	// Options are what every check job carries (judge, timeout).
	Options queue.CheckOptions
	// Tick is the period of the scheduler's loop. Default 1 s.
	Tick time.Duration
	// Batch is the most proxies enqueued (and results settled) in one step. Default 1000.
	Batch int
	// Chunk is the most proxies of one check job. Default 50.
	Chunk int
	// Lease is how long an enqueued proxy is not enqueued again while its result is missing.
	// Default 30 min.
	Lease time.Duration
	// MaxWaiting is how many check jobs may wait to run before the scheduler holds back.
	// Default 200.
	MaxWaiting int
	// OnSettled, if set, is told each check result the scheduler settled, once, after its
	// transaction committed: run counts its worker processes' checks in its metrics with it.
	OnSettled func(pool.Settled)
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Log receives the scheduler's logs. Default: discard.
	Log *slog.Logger
}

func (c SchedulerConfig) withDefaults() SchedulerConfig {
	c.Tick = cmp.Or(c.Tick, time.Second)
	c.Batch = cmp.Or(c.Batch, 1000)
	c.Chunk = cmp.Or(c.Chunk, 50)
	c.Lease = cmp.Or(c.Lease, 30*time.Minute)
	c.MaxWaiting = cmp.Or(c.MaxWaiting, 200)
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return c
}

// Scheduler keeps the pool checked: each tick it settles the results that came in (each proxy's
// next check: the re-check interval when alive, the back-off when not) and enqueues check jobs
// for the proxies that are due, new candidates first (see internal/pool's schedule). The
// schedule lives in the database, so a restart resumes it.
type Scheduler struct {
	cfg  SchedulerConfig
	life lifecycle.Once
	stop chan struct{} // closed by Stop: no new tick
	done chan struct{} // closed when the loop returned
	work context.CancelFunc

	mu       sync.Mutex
	inFlight map[int64]bool // guarded by mu: check jobs whose results are not settled; nil until read
}

// NewScheduler validates cfg and returns a Scheduler; Start starts it.
func NewScheduler(cfg SchedulerConfig) (*Scheduler, error) {
	if cfg.Store == nil {
		return nil, errors.New("scheduler: Store is required")
	}
	if b := cfg.Backoff; b.Interval <= 0 || b.Base <= 0 || b.Max < b.Base || b.Factor < 1 {
		return nil, fmt.Errorf("scheduler: bad back-off %+v", b)
	}
	if err := cfg.Options.Validate(); err != nil {
		return nil, fmt.Errorf("scheduler: job options: %w", err)
	}
	return &Scheduler{cfg: cfg.withDefaults(), stop: make(chan struct{}), done: make(chan struct{})}, nil
}

// Start starts the loop; its first tick runs at once. ctx bounds the start only.
func (s *Scheduler) Start(ctx context.Context) error {
	return s.life.Start(func() error {
		work, cancel := context.WithCancel(context.WithoutCancel(ctx))
		s.work = cancel
		go s.loop(work)
		return nil
	})
}

// Stop stops the scheduler: no tick starts any more.
//
// Shutdown order:
//  1. refuse: the loop starts no further tick;
//  2. drain: the tick in progress (a few short transactions) finishes while ctx lives;
//  3. cut (ctx ended first): the tick's database calls are cancelled (its transaction rolls
//     back: the jobs and the schedule's marks commit together or not at all);
//  4. wait: for the loop; bound after the cut: the database driver's reaction to cancellation;
//  5. error: ctx's cause when the cut ended a tick.
func (s *Scheduler) Stop(ctx context.Context) error {
	return s.life.Stop(ctx, func(cut context.Context) error {
		close(s.stop)
		select {
		case <-s.done:
			s.work()
			return nil
		case <-cut.Done():
		}
		s.work()
		<-s.done
		return fmt.Errorf("scheduler: tick cut short: %w", context.Cause(cut))
	})
}

func (s *Scheduler) loop(ctx context.Context) {
	defer close(s.done)
	t := time.NewTicker(s.cfg.Tick)
	defer t.Stop()
	for {
		if _, err := s.Tick(ctx); err != nil && ctx.Err() == nil {
			s.cfg.Log.Warn("scheduler tick failed", "err", err)
		}
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
	}
}

// TickResult is what one tick did.
type TickResult struct {
	Settled  int  // results read and scheduled
	Enqueued int  // proxies put on the queue
	Jobs     int  // check jobs inserted
	Held     bool // nothing enqueued: too many jobs wait already
}

// Tick settles the results of the jobs that finished, then enqueues at most Batch due proxies in check jobs
// of at most Chunk proxies, unless MaxWaiting jobs wait already. The loop calls it every Tick;
// tests call it directly with their own clock.
func (s *Scheduler) Tick(ctx context.Context) (TickResult, error) {
	var r TickResult
	n, err := s.settle(ctx)
	if err != nil {
		return r, err
	}
	r.Settled = n
	waiting, err := waitingJobs(ctx, s.cfg.Store.DB(), s.cfg.MaxWaiting)
	if err != nil {
		return r, err
	}
	if waiting >= s.cfg.MaxWaiting {
		r.Held = true
		return r, nil
	}
	now := s.cfg.Now()
	due, err := pool.DueChecks(ctx, s.cfg.Store.DB(), now, s.cfg.Batch)
	if err != nil || len(due) == 0 {
		return r, err
	}
	if err := s.enqueue(ctx, due, now); err != nil {
		return r, err
	}
	r.Enqueued, r.Jobs = len(due), (len(due)+s.cfg.Chunk-1)/s.cfg.Chunk
	s.cfg.Log.Debug("scheduled checks", "proxies", r.Enqueued, "jobs", r.Jobs, "settled", r.Settled)
	return r, nil
}

// settle schedules the next check of the proxies whose jobs completed. The jobs in flight are
// kept in memory (read once from the schedule's partial index at the first tick, then added as
// they are enqueued), so a tick costs a lookup of each by id in River's table, never a walk of
// the schedule: on PostgreSQL, 10,000 proxies in flight cost a second or more of heap fetches
// when walked cold. A job that completed is settled; one discarded, cancelled or gone (River's
// cleaner) is forgotten, and its proxies fall due again at the end of their lease.
func (s *Scheduler) settle(ctx context.Context) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inFlight == nil {
		ids, err := pool.InFlightJobs(ctx, s.cfg.Store.DB())
		if err != nil {
			return 0, err
		}
		s.inFlight = map[int64]bool{}
		for _, id := range ids {
			s.inFlight[id] = true
		}
	}
	if len(s.inFlight) == 0 {
		return 0, nil
	}
	ids := make([]int64, 0, len(s.inFlight))
	for id := range s.inFlight {
		ids = append(ids, id)
	}
	states, err := jobStates(ctx, s.cfg.Store.DB(), ids)
	if err != nil {
		return 0, err
	}
	var done []int64
	for _, id := range ids {
		switch states[id] {
		case "completed":
			done = append(done, id)
		case "discarded", "cancelled", "":
			delete(s.inFlight, id)
		}
	}
	if len(done) == 0 {
		return 0, nil
	}
	var res []pool.Settled
	err = s.cfg.Store.InTx(ctx, func(db pool.DB) error {
		var err error
		res, err = pool.Settle(ctx, db, s.cfg.Backoff, done)
		return err
	})
	if err != nil {
		return 0, err
	}
	for _, id := range done {
		delete(s.inFlight, id)
	}
	if s.cfg.OnSettled != nil {
		for _, r := range res { // after the commit: a rolled-back settle is settled again later
			s.cfg.OnSettled(r)
		}
	}
	return len(res), nil
}

// jobStates returns the River state of each job of ids that still exists.
func jobStates(ctx context.Context, db pool.DB, ids []int64) (map[int64]string, error) {
	out := make(map[int64]string, len(ids))
	for i := 0; i < len(ids); i += 500 {
		part := ids[i:min(i+500, len(ids))]
		args := make([]any, len(part))
		for j, id := range part {
			args[j] = id
		}
		rows, err := db.Query(ctx, `SELECT id, state FROM river_job WHERE id IN (?`+strings.Repeat(", ?", len(part)-1)+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("job states: %w", err)
		}
		for rows.Next() {
			var id int64
			var state string
			if err := rows.Scan(&id, &state); err != nil {
				rows.Close()
				return nil, fmt.Errorf("job states: %w", err)
			}
			out[id] = state
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("job states: %w", err)
		}
	}
	return out, nil
}

// enqueue inserts the check jobs of due and marks them enqueued, in one transaction.
func (s *Scheduler) enqueue(ctx context.Context, due []pool.Due, now time.Time) error {
	var parts [][]pool.Due
	var chunks []queue.Chunk
	for i := 0; i < len(due); i += s.cfg.Chunk {
		part := due[i:min(i+s.cfg.Chunk, len(due))]
		lines := make([]string, len(part))
		for j, d := range part {
			lines[j] = d.Proxy
		}
		parts = append(parts, part)
		chunks = append(chunks, queue.Chunk{Proxies: lines, Source: fmt.Sprintf("run@%s", now.UTC().Format(time.RFC3339))})
	}
	until := now.Add(s.cfg.Lease)
	ids, err := s.cfg.Store.EnqueueChecksThen(ctx, chunks, s.cfg.Options, func(db pool.DB, ids []int64) error {
		for i, id := range ids {
			if err := pool.MarkEnqueued(ctx, db, parts[i], id, until); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("enqueue %d due checks: %w", len(due), err)
	}
	s.mu.Lock()
	if s.inFlight != nil {
		for _, id := range ids {
			s.inFlight[id] = true
		}
	}
	s.mu.Unlock()
	return nil
}

// waitingJobs counts check jobs waiting to run, up to limit.
func waitingJobs(ctx context.Context, db pool.DB, limit int) (int, error) {
	rows, err := db.Query(ctx, `SELECT count(*) FROM (SELECT 1 FROM river_job WHERE state = 'available' AND kind = ? LIMIT ?) AS w`,
		queue.KindCheck, limit)
	if err != nil {
		return 0, fmt.Errorf("count waiting jobs: %w", err)
	}
	defer rows.Close()
	var n int
	if rows.Next() {
		if err := rows.Scan(&n); err != nil {
			return 0, fmt.Errorf("count waiting jobs: %w", err)
		}
	}
	return n, rows.Err()
}
