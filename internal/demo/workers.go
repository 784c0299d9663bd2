package demo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/proxyline/proxyline/internal/supervise"
)

// workers are the demo's worker processes, each a task of the demo's supervisor: SIGTERM
// (and SIGCONT) to stop, SIGKILL after the grace, nothing left behind, and killed by the kernel
// if the demo dies (parent-death signal).
type workers struct {
	sup       *supervise.Supervisor
	term      context.CancelFunc // ends every worker's task: SIGTERM, then SIGKILL after the grace
	ends      chan workerEnd     // one per worker
	exited    chan struct{}      // closed when the first worker ends
	firstExit sync.Once
	stopOnce  sync.Once
	stopErr   error
}

// workerEnd is how one worker's task ended.
type workerEnd struct {
	n   int
	res supervise.Result
	err error
}

// startWorkers starts the demo's supervisor and its worker processes: this program's own
// executable, run as "proxyline worker". Two layers are off, because a worker is a supervisor
// itself. The PID namespace: a worker knows itself, and the workers beside it, by (host, pid,
// start time) read from /proc (queue.Identity); in a namespace of its own every worker would be
// pid 2 there, and take its neighbours for dead. The cgroup: a worker makes its own cgroups below
// the one it runs in, so its task cgroup could not be removed when it ends (the supervisor's Stop
// would, with a warning). What is left (process group, parent-death signal, subreaper, cookie) is
// what the demo needs: the workers cannot outlive it.
func startWorkers(ctx context.Context, d *demo) (*workers, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own executable for the worker processes: %w", err)
	}
	sup, err := supervise.New(supervise.Config{Name: "demo", Disable: supervise.Layers{PIDNamespace: true, Cgroup: true},
		Grace: workerGrace + stopMargin, Log: d.io.Log})
	if err != nil {
		return nil, fmt.Errorf("supervisor: %w", err)
	}
	if err := sup.Start(ctx); err != nil {
		return nil, fmt.Errorf("start supervisor: %w", err)
	}
	tctx, term := context.WithCancel(ctx)
	w := &workers{sup: sup, term: term, ends: make(chan workerEnd, d.o.Workers), exited: make(chan struct{})}
	spec := supervise.Spec{Path: self, Args: []string{"worker", "--database", d.db, "--concurrency", "4", "--parallel", "50",
		"--grace", workerGrace.String()}, Env: append(os.Environ(), "PROXYLINE_LOG_LEVEL=warn"),
		Stdout: d.io.Stderr, Stderr: d.io.Stderr}
	for i := range d.o.Workers {
		spec := spec
		spec.Started = func(pid int) { d.io.Log.Info("demo: worker started", "worker", i+1, "pid", pid, "database", d.db) }
		go w.run(tctx, i+1, spec)
	}
	return w, nil
}

// run runs worker n until its task ends, and reports how it ended.
func (w *workers) run(ctx context.Context, n int, spec supervise.Spec) {
	res, err := w.sup.Run(ctx, spec)
	w.ends <- workerEnd{n: n, res: res, err: err}
	w.firstExit.Do(func() { close(w.exited) })
}

// stop stops the workers the way a user or systemd would: SIGTERM, they drain and exit 0;
// SIGKILL after the grace. It reports each worker that did not end cleanly. Idempotent.
func (w *workers) stop() error {
	w.stopOnce.Do(func() {
		w.term()
		var errs []error
		for range cap(w.ends) {
			if err := (<-w.ends).failure(); err != nil {
				errs = append(errs, err)
			}
		}
		errs = append(errs, w.sup.Stop(context.Background()))
		w.stopErr = errors.Join(errs...)
	})
	return w.stopErr
}

// failure is what went wrong with the worker, or nil when it ended cleanly (or was canceled).
func (e workerEnd) failure() error {
	switch {
	case e.res.Signaled:
		return fmt.Errorf("worker %d: killed by %s", e.n, e.res.Signal)
	case e.res.ExitCode != 0:
		return fmt.Errorf("worker %d: exit status %d", e.n, e.res.ExitCode)
	case e.err != nil && !errors.Is(e.err, context.Canceled):
		return fmt.Errorf("worker %d: %w", e.n, e.err)
	}
	return nil
}
