package cli

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/proxyline/proxyline/internal/backend"
	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/internal/supervise"
	"github.com/proxyline/proxyline/proxy"
)

// workerOptions are the flags of proxyline worker.
type workerOptions struct {
	db          queue.DatabaseFlag // --database
	concurrency int
	parallel    int
	exec        backend.Exec // --exec and its flags, --disable-layers (of the worker's supervisor)
	grace       time.Duration
	timeout     time.Duration
	jobTimeout  time.Duration
	rescueAfter time.Duration
	deadAfter   time.Duration
}

func (o *workerOptions) flags(fs *flag.FlagSet) {
	o.db.Register(fs)
	fs.IntVar(&o.concurrency, "concurrency", 8, "jobs (chunks) worked at once; more than --parallel/chunk keeps every proxy slot busy while jobs wait on their slowest proxies")
	fs.IntVar(&o.parallel, "parallel", backend.DefaultParallel, "proxies checked at once by this worker, shared by its running jobs (with --exec: the tool's {concurrency})")
	o.exec.Register(fs)
	fs.DurationVar(&o.grace, "grace", 10*time.Second, "time running jobs get to finish after the first signal")
	fs.DurationVar(&o.timeout, "t", 0, "check timeout for jobs that carry none (default 10s)")
	fs.DurationVar(&o.jobTimeout, "job-timeout", 0, "time one job may take (default 5m)")
	fs.DurationVar(&o.rescueAfter, "rescue-after", 0, "hand back jobs running longer than this, from any machine (default job timeout + 1m)")
	fs.DurationVar(&o.deadAfter, "dead-after", queue.DefaultDeadAfter, "hand back the jobs of a worker, on any machine, whose heartbeat (every 2s) is older than this; at least 6s (3 heartbeats)")
}

// Validate checks the flags. The --exec template is parsed and its program found now, before the
// database is opened: a worker that cannot run its checker must not take a job.
func (o *workerOptions) Validate() error {
	var errs []error
	if o.concurrency < 1 || o.concurrency > 10_000 {
		errs = append(errs, fmt.Errorf("--concurrency %d: want 1-10000", o.concurrency))
	}
	if o.parallel < 1 || o.parallel > 10_000 {
		errs = append(errs, fmt.Errorf("--parallel %d: want 1-10000", o.parallel))
	}
	if o.grace < 0 {
		errs = append(errs, fmt.Errorf("--grace %s: must not be negative", o.grace))
	}
	if o.timeout < 0 {
		errs = append(errs, fmt.Errorf("-t %s: must not be negative", o.timeout))
	}
	if o.jobTimeout < 0 || o.rescueAfter < 0 {
		errs = append(errs, errors.New("--job-timeout and --rescue-after must not be negative"))
	} else if jt := cmp.Or(o.jobTimeout, queue.DefaultJobTimeout); o.rescueAfter != 0 && o.rescueAfter <= jt {
		errs = append(errs, fmt.Errorf("--rescue-after %s must be longer than --job-timeout %s: a job still running is not stuck", o.rescueAfter, jt))
	}
	if least := 3 * queue.DefaultHeartbeatInterval; o.deadAfter < least {
		errs = append(errs, fmt.Errorf("--dead-after %s: want at least %s (3 heartbeats)", o.deadAfter, least))
	}
	if err := o.db.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := o.exec.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return usageError("%w", errors.Join(errs...))
	}
	return nil
}

func workerCommand() command {
	return command{
		Name:    "worker",
		Summary: "take check jobs from the queue and put the results in the pool",
		Run: func(ctx context.Context, env *Env, args []string) error {
			o := &workerOptions{}
			fs := newFlagSet("worker", "[flags]",
				"Takes check jobs from the queue and writes their results to the pool. The first SIGTERM or\n"+
					"SIGINT stops taking jobs and lets running ones finish within --grace, then hands the rest\n"+
					"back to the queue; a second one stops at once. Exits 0 after a clean drain.")
			o.flags(fs)
			if err := parseOptions(fs, env, args, o); err != nil {
				return err
			}
			return runWorker(ctx, env, o)
		},
	}
}

// runWorker is the worker command once its flags are valid. It becomes a supervisor
// (subreaper, start-up sweep) before taking any job, then works until the first signal.
//
// Shutdown order, the reverse of the start: the worker (running jobs finish within --grace or are
// handed back; a second signal cuts), then the store (no job uses it any more), then the
// supervisor (no task runs any more; it removes its cgroup). Their errors are joined.
func runWorker(ctx context.Context, env *Env, o *workerOptions) (err error) {
	sup, err := supervise.New(supervise.Config{Name: "worker", Disable: o.exec.Layers(), Log: env.Log})
	if err != nil {
		return fmt.Errorf("supervisor: %w", err)
	}
	if err := sup.Start(ctx); err != nil { // ctx: probes and sweep only
		return fmt.Errorf("start supervisor: %w", err)
	}
	defer func() {
		// ctx is cancelled by now: a fresh context. The supervisor's cut is bounded (grace,
		// then SIGKILL), so it needs no deadline (docs/lifecycle.md).
		if serr := sup.Stop(context.WithoutCancel(ctx)); serr != nil {
			err = errors.Join(err, fmt.Errorf("stop supervisor: %w", serr))
		}
	}()
	st, err := openStore(ctx, env, o.db, queue.Migrate)
	if err != nil {
		return err
	}
	defer st.Close()
	jobs, err := backend.NewJobs(backend.JobsConfig{Exec: o.exec, Timeout: o.timeout, Parallel: o.parallel, Runner: sup, Log: env.Log})
	if err != nil {
		return err
	}
	w, err := st.NewWorker(queue.WorkerConfig{
		NewChecker:           jobs.NewChecker, // the worker keeps one checker per distinct job options
		ParseProxy:           proxy.Parse,
		Concurrency:          o.concurrency,
		Grace:                o.grace,
		Backend:              jobs.Name(),
		Layers:               sup.Layers().Names(),
		JobTimeout:           o.jobTimeout,
		RescueStuckJobsAfter: o.rescueAfter,
		DeadAfter:            o.deadAfter,
		Logger:               env.Log,
		// A dead worker of this machine: sweep its task directories (credentials) now.
		OnDeadWorker: func(ctx context.Context) {
			if _, err := sup.SweepDead(ctx); err != nil && ctx.Err() == nil {
				env.Log.Warn("sweep after a dead worker", "err", err)
			}
		},
	})
	if err != nil {
		return usageError("%v", err)
	}
	if err := w.Start(ctx); err != nil {
		return err
	}
	return waitWorker(ctx, env, w)
}

// waitWorker waits for the first signal and stops the worker: its Grace bounds the drain, a
// second signal (env.Force) cuts it. Or it stops the worker that cannot work, or that stopped on
// its own.
func waitWorker(ctx context.Context, env *Env, w *queue.Worker) error {
	stopCtx, cancel := stopContext(ctx, env)
	defer cancel()
	select {
	case <-ctx.Done():
	case <-w.Failed():
		// Its set-up keeps failing (logged at ERROR): stop, handing the jobs back, and exit 3.
		return errors.Join(fmt.Errorf("worker cannot work: %w", w.Err()), w.Stop(stopCtx))
	case <-w.Stopped():
		return errors.Join(errors.New("worker stopped on its own"), w.Stop(stopCtx))
	}
	// A second signal hands the running jobs back at once: logged, not an error (exit 0, as
	// before the lifecycle change and as after a drain; nothing is lost).
	return withoutForced(env, w.Stop(stopCtx))
}
