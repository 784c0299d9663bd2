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
	"github.com/proxyline/proxyline/internal/lifecycle"
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
	// RescueInterval is the period of the rescuers (see rescue.go). Default 500 ms.
	RescueInterval time.Duration
	// HeartbeatInterval is how often the worker refreshes its heartbeat (and, on SQLite, checks
	// that its database file is still there). Default 2 s.
	HeartbeatInterval time.Duration
	// DeadAfter is how long a worker's heartbeat may be silent before other workers, on any
	// machine, hand back its running jobs. At least 3 heartbeat intervals. Default 10 s.
	DeadAfter time.Duration
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
	// SetupFailureLimit is how many failures of the worker's own set-up in a row (see
	// setupGuard) stop it: Failed is closed. Default 5.
	SetupFailureLimit int
	// SetupBackoff is how long a job whose run failed on the worker's set-up waits before it is
	// taken again, doubling with each failure in a row up to 30 s. Default 1 s.
	SetupBackoff time.Duration
	// Logger receives the worker's logs. Default: discard.
	Logger *slog.Logger
	// OnDeadWorker, if set, is called (from the rescuer's goroutine) after a rescue pass handed
	// back jobs of a dead worker process of this machine, so that what it left (the exec
	// backend's task directories, with proxy credentials; stray task processes) is swept at once.
	// Default: nothing (the next start-up sweep or `proxyline cleanup` finds them).
	OnDeadWorker func(ctx context.Context)
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
	if c.Grace < 0 || c.RescueInterval < 0 || c.FetchPollInterval < 0 || c.FetchCooldown < 0 || c.JobTimeout < 0 ||
		c.RescueStuckJobsAfter < 0 || c.HeartbeatInterval < 0 || c.DeadAfter < 0 || c.SetupFailureLimit < 0 || c.SetupBackoff < 0 {
		errs = append(errs, errors.New("worker: durations and limits must not be negative"))
	}
	if beat := cmp.Or(c.HeartbeatInterval, DefaultHeartbeatInterval); c.DeadAfter != 0 && c.DeadAfter < 3*beat {
		errs = append(errs, fmt.Errorf("worker: dead-after %s must be at least 3 heartbeat intervals (%s)", c.DeadAfter, 3*beat))
	}
	if c.RescueStuckJobsAfter != 0 && c.RescueStuckJobsAfter <= cmp.Or(c.JobTimeout, DefaultJobTimeout) {
		errs = append(errs, errors.New("worker: RescueStuckJobsAfter must exceed JobTimeout"))
	}
	return errors.Join(errs...)
}

// DefaultJobTimeout bounds one job when WorkerConfig.JobTimeout is zero.
const DefaultJobTimeout = 5 * time.Minute

// Heartbeat defaults: a worker refreshes its heartbeat every DefaultHeartbeatInterval; one
// silent for DefaultDeadAfter has its running jobs handed back by the others.
const (
	DefaultHeartbeatInterval = 2 * time.Second
	DefaultDeadAfter         = 10 * time.Second
)

func (c WorkerConfig) withDefaults() WorkerConfig {
	c.Concurrency = cmp.Or(c.Concurrency, 2)
	c.Grace = cmp.Or(c.Grace, 10*time.Second)
	c.Backend = cmp.Or(c.Backend, "inprocess")
	c.RescueInterval = cmp.Or(c.RescueInterval, 500*time.Millisecond)
	c.HeartbeatInterval = cmp.Or(c.HeartbeatInterval, DefaultHeartbeatInterval)
	c.DeadAfter = cmp.Or(c.DeadAfter, DefaultDeadAfter)
	c.FetchPollInterval = cmp.Or(c.FetchPollInterval, 200*time.Millisecond)
	c.FetchCooldown = cmp.Or(c.FetchCooldown, 10*time.Millisecond)
	c.JobTimeout = cmp.Or(c.JobTimeout, DefaultJobTimeout)
	c.RescueStuckJobsAfter = cmp.Or(c.RescueStuckJobsAfter, c.JobTimeout+time.Minute)
	c.SetupFailureLimit = cmp.Or(c.SetupFailureLimit, defaultSetupFailureLimit)
	c.SetupBackoff = cmp.Or(c.SetupBackoff, defaultSetupBackoff)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Worker takes jobs from the queue and checks them. One per process: its River client ID is the
// process's Identity. It has the lifecycle of every long-lived service (docs/lifecycle.md): Start
// returns once it takes jobs, Stop(ctx) drains, cuts at ctx's end, and waits.
//
// A worker also stops on its own, cancelling its running jobs at once, when its SQLite database
// file is removed or replaced under it (Stopped is closed; Stop returns why).
type Worker struct {
	store *Store
	cfg   WorkerConfig
	self  Identity
	row   WorkerRow
	life  lifecycle.Once

	// Used by the background goroutine only.
	lastBeat     time.Time // last successful heartbeat (monotonic)
	healthySince time.Time // start of the current run of heartbeats no more than DeadAfter apart

	failOnce sync.Once
	failErr  error // set once by fail, read after bgDone is closed

	client   riverClient
	stopping atomic.Bool // a stop began (Stop, or fail): a job cut short hands itself back

	mu       sync.Mutex
	checkers map[string]Checker // guarded by mu; by JSON of CheckOptions

	setup *setupGuard // failures of the worker's own set-up

	bgCancel context.CancelFunc
	bgDone   chan struct{}
}

// riverCutWait bounds the wait for River after a cut: every running job's context is cancelled
// then, and a job that already has its results writes them within 30 s (checkjob.go).
const riverCutWait = 45 * time.Second

// NewWorker returns a worker on the store; it touches nothing (no goroutine, no database round
// trip). Start it, then Stop it.
func (s *Store) NewWorker(cfg WorkerConfig) (*Worker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	self, err := Self()
	if err != nil {
		return nil, fmt.Errorf("worker identity: %w", err)
	}
	w := &Worker{store: s, cfg: cfg, self: self, checkers: map[string]Checker{}, bgDone: make(chan struct{}),
		setup: newSetupGuard(cfg.SetupFailureLimit, cfg.SetupBackoff, cfg.Logger)}
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
// taking jobs; it returns once River runs. ctx bounds the start-up only (the database round trips
// and the first rescue), not the worker's life: only Stop (or the worker's own failure) ends it.
// If ctx ends during the start-up, Start undoes it and returns an error wrapping ctx's error. A
// second Start returns lifecycle.ErrStarted, a Start after Stop lifecycle.ErrStopped.
func (w *Worker) Start(ctx context.Context) error {
	return w.life.Start(func() error { return w.start(ctx) })
}

func (w *Worker) start(ctx context.Context) error {
	now := time.Now()
	w.row = WorkerRow{ID: w.self.String(), Host: w.self.Host, PID: int64(w.self.PID),
		StartedAt: now, HeartbeatAt: now, Concurrency: w.cfg.Concurrency, Backend: w.cfg.Backend, Layers: w.cfg.Layers}
	if err := w.store.registerWorker(ctx, w.row); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	w.lastBeat, w.healthySince = now, now
	w.rescue(ctx)
	// River's Start context is a lifetime (cancelling it stops River): River gets one only Stop
	// and fail end, so that the stop is graceful and in the owner's order.
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	w.bgCancel = cancel
	go w.background(bg)
	err := ctx.Err()
	if err == nil {
		if err = w.client.Start(bg); err != nil {
			err = fmt.Errorf("start river client: %w", err)
		}
	}
	if err != nil {
		cancel()
		<-w.bgDone
		uctx, ucancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer ucancel()
		_ = w.store.unregisterWorker(uctx, w.self.String())
		return fmt.Errorf("start worker: %w", err)
	}
	w.cfg.Logger.Info("worker started", "id", w.self.String(), "engine", w.store.Engine(),
		"database", w.store.Name(), "concurrency", w.cfg.Concurrency, "backend", w.cfg.Backend, "grace", w.cfg.Grace)
	return nil
}

// Stopped is closed when the worker's River client stopped (after Stop, or on its own).
func (w *Worker) Stopped() <-chan struct{} { return w.client.Stopped() }

// Failed is closed when the worker's own set-up failed SetupFailureLimit times in a row: it
// cannot work. Its owner should Stop it (jobs it holds are handed back) and report Err.
func (w *Worker) Failed() <-chan struct{} { return w.setup.tripped }

// Err says why Failed was closed; nil before.
func (w *Worker) Err() error { return w.setup.cause() }

// background runs the rescuers, the heartbeat and the database file check until ctx ends.
func (w *Worker) background(ctx context.Context) {
	defer close(w.bgDone)
	t := time.NewTicker(w.cfg.RescueInterval)
	defer t.Stop()
	beat := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if time.Since(beat) >= w.cfg.HeartbeatInterval {
			beat = time.Now()
			if err := w.store.eng.checkFile(); err != nil {
				w.fail(err)
				return
			}
			w.heartbeat(ctx)
		}
		w.rescue(ctx)
	}
}

// heartbeat refreshes the worker's heartbeat, and notices when this worker has been silent for
// longer than DeadAfter (paused, or cut off from the database): other workers may have handed
// back its running jobs meanwhile, and the fence drops what those executions write.
func (w *Worker) heartbeat(ctx context.Context) {
	now := time.Now()
	if err := w.store.heartbeat(ctx, w.row); err != nil {
		if ctx.Err() == nil {
			w.cfg.Logger.Warn("heartbeat failed", "err", err)
		}
		return
	}
	if gap := now.Sub(w.lastBeat); gap > w.cfg.DeadAfter {
		w.cfg.Logger.Warn("this worker was silent for longer than its dead-after bound (paused, or cut off from the database): "+
			"other workers may have handed back its running jobs, whose results it will drop",
			"silent", gap.Round(time.Millisecond), "dead_after", w.cfg.DeadAfter)
		w.healthySince = now
	}
	w.lastBeat = now
}

// rescue runs the rescuers. The heartbeat one only once this worker's own heartbeats have gone
// through, no more than DeadAfter apart, for DeadAfter: after a database outage (or a pause of
// its own) every heartbeat is old, and a worker that came back first must not hand back the
// jobs of all the others before they had a chance to beat again.
func (w *Worker) rescue(ctx context.Context) {
	deadAfter := w.cfg.DeadAfter
	if time.Since(w.lastBeat) > w.cfg.DeadAfter || time.Since(w.healthySince) < w.cfg.DeadAfter {
		deadAfter = 0
	}
	moved, err := w.store.RescueOnce(ctx, w.self, deadAfter)
	if err != nil && ctx.Err() == nil {
		w.cfg.Logger.Warn("rescue failed", "err", err)
	}
	deadHere := false
	for _, r := range moved {
		w.cfg.Logger.Info("handed back job of dead worker", "job", r.JobID, "attempt", r.Attempt,
			"dead_worker", r.DeadBy, "reason", r.Reason, "discarded", r.Discarded)
		deadHere = deadHere || r.Reason == reasonProcessGone
	}
	if deadHere && w.cfg.OnDeadWorker != nil && ctx.Err() == nil {
		w.cfg.OnDeadWorker(ctx)
	}
}

// fail stops the worker on its own after an error that makes going on pointless or harmful:
// running jobs are cancelled at once (they hand their jobs back); Stop returns err.
func (w *Worker) fail(err error) {
	w.failOnce.Do(func() {
		w.failErr = err
		w.cfg.Logger.Error("worker stopping", "err", err)
		w.stopping.Store(true)
		go func() { _ = w.client.StopAndCancel(context.Background()) }()
	})
}

// Stop stops the worker and returns once it has stopped: no job of it runs any more, and the jobs
// it did not finish are back in the queue. It is idempotent, safe without Start, and safe to call
// from several goroutines (docs/lifecycle.md).
//
// Shutdown order:
//  1. refuse: River fetches no new job; a job cut short from now on hands itself back
//     (JobSnooze(0)) instead of failing;
//  2. drain: running jobs may finish for Grace (River's soft stop) while ctx lives; at Grace's
//     end River cancels them and they hand their jobs back (a normal stop: no error);
//  3. cut (ctx ended first): running jobs are cancelled at once (River's StopAndCancel) and hand
//     their jobs back;
//  4. wait and release: River stops (a job that has its results writes them first); then the
//     rescuers and the heartbeat; then the worker's row is deleted (other workers no longer see
//     it); then checkers that are io.Closers are closed (the checks that used them have ended).
//     Bound after the cut: riverCutWait (45 s) for River, 10 s for the row;
//  5. error: why the worker stopped on its own (if it did), that the cut cancelled running jobs
//     (wrapping ctx's cause), and whatever could not be released.
func (w *Worker) Stop(ctx context.Context) error {
	return w.life.Stop(ctx, w.stop)
}

func (w *Worker) stop(cut context.Context) error {
	w.stopping.Store(true)
	w.cfg.Logger.Info("worker stopping: no new jobs; running jobs get the grace period", "grace", w.cfg.Grace)
	errs := w.stopRiver(cut)
	w.bgCancel()
	<-w.bgDone
	if w.failErr != nil {
		errs = append([]error{w.failErr}, errs...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.store.unregisterWorker(ctx, w.self.String()); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, w.closeCheckers()...)
	w.cfg.Logger.Info("worker stopped", "id", w.self.String())
	return errors.Join(errs...)
}

// stopRiver stops River gracefully until cut ends, then cancels the running jobs and waits for
// River at most riverCutWait.
func (w *Worker) stopRiver(cut context.Context) []error {
	if err := w.client.Stop(cut); err == nil {
		return nil
	}
	w.cfg.Logger.Warn("worker stop cut short: cancelling running jobs, which hand their jobs back")
	ctx, cancel := context.WithTimeout(context.Background(), riverCutWait)
	defer cancel()
	errs := []error{fmt.Errorf("worker %s: stop cut short, running jobs cancelled and handed back: %w", w.self, context.Cause(cut))}
	if err := w.client.StopAndCancel(ctx); err != nil {
		errs = append(errs, fmt.Errorf("worker %s: river client still running %s after the cut: %w", w.self, riverCutWait, err))
	}
	return errs
}

// closeCheckers closes the checkers that are io.Closers.
func (w *Worker) closeCheckers() []error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var errs []error
	for _, c := range w.checkers {
		if cl, ok := c.(io.Closer); ok {
			if err := cl.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close checker: %w", err))
			}
		}
	}
	w.checkers = map[string]Checker{}
	return errs
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
