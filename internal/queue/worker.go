package queue

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/riverqueue/river"

	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/proxy"
)

// Checker checks one chunk of proxies and returns one result per proxy, in the same order.
// When ctx ends it returns promptly (its checks classed Canceled, or an error).
type Checker interface {
	CheckChunk(ctx context.Context, proxies []proxy.Proxy) ([]check.Result, error)
}

// NewChecker builds the Checker for a job's options. The worker calls it once per distinct
// options and keeps the result; a Checker that is an io.Closer is closed when the worker stops.
type NewChecker func(ctx context.Context, opts CheckOptions) (Checker, error)

// WorkerConfig configures a Worker. Zero values mean the defaults named in each field's doc.
type WorkerConfig struct {
	// NewChecker builds checkers. Required.
	NewChecker NewChecker
	// ParseProxy parses one proxy of a job's chunk. Required.
	ParseProxy func(string) (proxy.Proxy, error)
	// Concurrency is how many jobs (chunks) run at once. Default 2.
	Concurrency int
	// Grace is how long a stop lets running jobs finish before cancelling them. Default 10 s.
	Grace time.Duration
	// Backend names the checker backend for status ("inprocess" or "exec"). Default "inprocess".
	Backend string
	// Layers names the supervision layers in force, for status. Default none.
	Layers []string
	// RescueInterval is the period of the local rescuer and heartbeat. Default 500 ms.
	RescueInterval time.Duration
	// FetchPollInterval is how often the worker looks for jobs it was not told about (all of
	// them on SQLite, which has no notifications). Default 200 ms.
	FetchPollInterval time.Duration
	// FetchCooldown is the least time between two fetches: a job slot that frees up is refilled
	// after at most this long. Default 10 ms (River's default, 100 ms, idles short jobs).
	FetchCooldown time.Duration
	// JobTimeout bounds one job. Default 5 min.
	JobTimeout time.Duration
	// RescueStuckJobsAfter is River's cross-machine rescue: a job running longer is handed back
	// by the leader's rescuer (which runs every 30 s). Default JobTimeout + 1 min.
	RescueStuckJobsAfter time.Duration
	// Logger receives the worker's logs. Default: discard.
	Logger *slog.Logger
}

// Validate checks the configuration.
func (c WorkerConfig) Validate() error {
	var errs []error
	if c.NewChecker == nil {
		errs = append(errs, errors.New("worker: NewChecker is required"))
	}
	if c.ParseProxy == nil {
		errs = append(errs, errors.New("worker: ParseProxy is required"))
	}
	if c.Concurrency < 0 || c.Concurrency > river.QueueNumWorkersMax {
		errs = append(errs, fmt.Errorf("worker: concurrency %d out of range 1-%d", c.Concurrency, river.QueueNumWorkersMax))
	}
	if c.Grace < 0 || c.RescueInterval < 0 || c.FetchPollInterval < 0 || c.FetchCooldown < 0 || c.JobTimeout < 0 || c.RescueStuckJobsAfter < 0 {
		errs = append(errs, errors.New("worker: durations must not be negative"))
	}
	if c.RescueStuckJobsAfter != 0 && c.RescueStuckJobsAfter <= cmp.Or(c.JobTimeout, defaultJobTimeout) {
		errs = append(errs, errors.New("worker: RescueStuckJobsAfter must exceed JobTimeout"))
	}
	return errors.Join(errs...)
}

const defaultJobTimeout = 5 * time.Minute

func (c WorkerConfig) withDefaults() WorkerConfig {
	c.Concurrency = cmp.Or(c.Concurrency, 2)
	c.Grace = cmp.Or(c.Grace, 10*time.Second)
	c.Backend = cmp.Or(c.Backend, "inprocess")
	c.RescueInterval = cmp.Or(c.RescueInterval, 500*time.Millisecond)
	c.FetchPollInterval = cmp.Or(c.FetchPollInterval, 200*time.Millisecond)
	c.FetchCooldown = cmp.Or(c.FetchCooldown, 10*time.Millisecond)
	c.JobTimeout = cmp.Or(c.JobTimeout, defaultJobTimeout)
	c.RescueStuckJobsAfter = cmp.Or(c.RescueStuckJobsAfter, c.JobTimeout+time.Minute)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Worker takes jobs from the queue and checks them. One per process: its River client ID is the
// process's Identity.
//
// Shutdown order (Stop): mark stopping; River stops fetching and waits up to Grace for running
// jobs, then cancels them and each hands its job back (JobSnooze(0)); the local rescuer and
// heartbeat stop; the worker's row is deleted; checkers that are io.Closers are closed.
type Worker struct {
	store *Store
	cfg   WorkerConfig
	self  Identity

	client   riverClient
	stopping atomic.Bool
	started  atomic.Bool

	mu       sync.Mutex
	checkers map[string]Checker // guarded by mu; by JSON of CheckOptions

	bgCancel context.CancelFunc
	bgDone   chan struct{}
	stopOnce sync.Once
	stopErr  error
}

// NewWorker returns a worker on the store. Start it, then Stop it.
func (s *Store) NewWorker(cfg WorkerConfig) (*Worker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	self, err := Self()
	if err != nil {
		return nil, fmt.Errorf("worker identity: %w", err)
	}
	w := &Worker{store: s, cfg: cfg, self: self, checkers: map[string]Checker{}, bgDone: make(chan struct{})}
	workers := river.NewWorkers()
	if err := river.AddWorkerSafely[CheckArgs](workers, &checkWorker{w: w}); err != nil {
		return nil, fmt.Errorf("register check worker: %w", err)
	}
	client, err := s.eng.newClient(&river.Config{
		ID:                   self.String(),
		Logger:               cfg.Logger,
		Workers:              workers,
		Queues:               map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: cfg.Concurrency}},
		FetchPollInterval:    cfg.FetchPollInterval,
		FetchCooldown:        max(min(cfg.FetchCooldown, cfg.FetchPollInterval), river.FetchCooldownMin),
		FetchOnlyKnownKinds:  true,
		JobTimeout:           cfg.JobTimeout,
		RescueStuckJobsAfter: cfg.RescueStuckJobsAfter,
		SoftStopTimeout:      cfg.Grace,
		MaxAttempts:          DefaultMaxAttempts,
	})
	if err != nil {
		return nil, err
	}
	w.client = client
	return w, nil
}

// ID returns the worker's River client ID, host/pid/starttime.
func (w *Worker) ID() string { return w.self.String() }

// Start registers the worker, hands back the jobs of dead workers of this host, and starts
// taking jobs. ctx bounds the start only: stop the worker with Stop (graceful) or Abort.
func (w *Worker) Start(ctx context.Context) error {
	if !w.started.CompareAndSwap(false, true) {
		return errors.New("worker already started")
	}
	now := time.Now()
	if err := w.store.registerWorker(ctx, WorkerRow{ID: w.self.String(), Host: w.self.Host, PID: int64(w.self.PID),
		StartedAt: now, HeartbeatAt: now, Concurrency: w.cfg.Concurrency, Backend: w.cfg.Backend, Layers: w.cfg.Layers}); err != nil {
		return err
	}
	w.rescue(ctx)
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	w.bgCancel = cancel
	go w.background(bg)
	// River's Start context would cancel running jobs at once when canceled; our stop is
	// graceful, so River gets a context only Stop/Abort end.
	if err := w.client.Start(bg); err != nil {
		cancel()
		<-w.bgDone
		_ = w.store.unregisterWorker(context.WithoutCancel(ctx), w.self.String())
		return fmt.Errorf("start river client: %w", err)
	}
	w.cfg.Logger.Info("worker started", "id", w.self.String(), "engine", w.store.Engine(),
		"database", w.store.Name(), "concurrency", w.cfg.Concurrency, "backend", w.cfg.Backend, "grace", w.cfg.Grace)
	return nil
}

// Stopped is closed when the worker's River client stopped (after Stop, or on its own).
func (w *Worker) Stopped() <-chan struct{} { return w.client.Stopped() }

// background runs the local rescuer and the heartbeat until ctx ends.
func (w *Worker) background(ctx context.Context) {
	defer close(w.bgDone)
	t := time.NewTicker(w.cfg.RescueInterval)
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		w.rescue(ctx)
		if n%4 == 0 {
			if err := w.store.heartbeat(ctx, w.self.String(), time.Now()); err != nil && ctx.Err() == nil {
				w.cfg.Logger.Warn("heartbeat failed", "err", err)
			}
		}
	}
}

func (w *Worker) rescue(ctx context.Context) {
	moved, err := w.store.RescueOnce(ctx, w.self)
	if err != nil && ctx.Err() == nil {
		w.cfg.Logger.Warn("local rescue failed", "err", err)
	}
	for _, r := range moved {
		w.cfg.Logger.Info("handed back job of dead worker", "job", r.JobID, "attempt", r.Attempt,
			"dead_worker", r.DeadBy, "discarded", r.Discarded)
	}
}

// Stop stops the worker gracefully (see the type's shutdown order) and returns once it has
// stopped. It is idempotent; Abort from another goroutine makes it finish sooner.
func (w *Worker) Stop() error {
	w.stopOnce.Do(func() {
		w.stopping.Store(true)
		if !w.started.Load() {
			return
		}
		w.cfg.Logger.Info("worker stopping: no new jobs; running jobs get the grace period", "grace", w.cfg.Grace)
		var errs []error
		if err := w.client.Stop(context.Background()); err != nil {
			errs = append(errs, fmt.Errorf("stop river client: %w", err))
		}
		w.bgCancel()
		<-w.bgDone
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := w.store.unregisterWorker(ctx, w.self.String()); err != nil {
			errs = append(errs, err)
		}
		w.mu.Lock()
		for _, c := range w.checkers {
			if cl, ok := c.(io.Closer); ok {
				if err := cl.Close(); err != nil {
					errs = append(errs, fmt.Errorf("close checker: %w", err))
				}
			}
		}
		w.checkers = map[string]Checker{}
		w.mu.Unlock()
		w.stopErr = errors.Join(errs...)
		w.cfg.Logger.Info("worker stopped", "id", w.self.String())
	})
	return w.stopErr
}

// Abort cancels the running jobs now (they hand their jobs back) and stops fetching. Call Stop
// to wait for the end. Safe to call at any time, more than once.
func (w *Worker) Abort() {
	w.stopping.Store(true)
	if !w.started.Load() {
		return
	}
	w.cfg.Logger.Warn("worker aborting: cancelling running jobs")
	// StopAndCancel cancels the jobs first, then returns at once when a Stop is in progress.
	go func() { _ = w.client.StopAndCancel(context.Background()) }()
}

// checker returns the checker for opts, building it on first use.
func (w *Worker) checker(ctx context.Context, opts CheckOptions) (Checker, error) {
	key, err := json.Marshal(opts)
	if err != nil {
		return nil, fmt.Errorf("check options: %w", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if c, ok := w.checkers[string(key)]; ok {
		return c, nil
	}
	c, err := w.cfg.NewChecker(ctx, opts)
	if err != nil {
		return nil, err
	}
	w.checkers[string(key)] = c
	return c, nil
}
