package run

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/proxyline/proxyline/internal/backend"
	"github.com/proxyline/proxyline/internal/lifecycle"
	"github.com/proxyline/proxyline/internal/metrics"
	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/internal/supervise"
	"github.com/proxyline/proxyline/proxy"
)

// workerPool runs the queue's workers: one in this process (Processes 0), or Processes child
// processes running `proxyline worker` under a supervisor, restarted when one ends on its own.
type workerPool struct {
	cfg      WorkersConfig
	timeout  time.Duration // check timeout of jobs without one
	database string        // for the children, through PROXYLINE_DATABASE (never argv)
	store    *queue.Store
	metrics  *metrics.Metrics
	stderr   io.Writer // the children's logs
	exe      string    // the proxyline binary the children run
	log      *slog.Logger

	life lifecycle.Once
	w    *queue.Worker         // in-process
	sup  *supervise.Supervisor // child processes
	term context.CancelFunc    // ends every child's task: SIGTERM, SIGKILL after the grace
	wg   sync.WaitGroup        // one per child's restart loop
}

// childMargin is what a child gets beyond its --grace to hand its jobs back and exit before the
// supervisor kills it.
const childMargin = 5 * time.Second

func (p *workerPool) Start(ctx context.Context) error {
	return p.life.Start(func() error {
		if p.cfg.Processes == 0 {
			return p.startInProcess(ctx)
		}
		return p.startChildren(ctx)
	})
}

func (p *workerPool) startInProcess(ctx context.Context) error {
	jobs, err := backend.NewJobs(backend.JobsConfig{Timeout: p.timeout, Parallel: p.cfg.Parallel, Log: p.log})
	if err != nil {
		return err
	}
	w, err := p.store.NewWorker(queue.WorkerConfig{
		NewChecker:  metrics.WrapChecker(jobs.NewChecker, p.metrics),
		ParseProxy:  proxy.Parse,
		Concurrency: p.cfg.Concurrency,
		Grace:       p.cfg.Grace.D(),
		Backend:     jobs.Name(),
		Logger:      p.log,
	})
	if err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	if err := w.Start(ctx); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	p.w = w
	return nil
}

// startChildren starts the supervisor and the children. Three layers are off, because a worker
// is a supervisor itself: the PID namespace (a worker knows itself and its neighbours by host,
// pid and start time read from /proc), the cgroup (a worker makes its own cgroups below the one
// it runs in), and the subreaper: a worker's own descendants are its business (its layers kill
// them when it dies), and a descendant re-parented to us as a zombie carries no cookie we could
// verify, so we would leave it unreaped (seen: a worker SIGKILLed during its start-up probe left
// its probe to us). Without it they go to the next subreaper or init, which reaps them. What is
// left (process group, parent-death signal, cookie and the start-up sweep) is what keeps a
// child from outliving this process.
func (p *workerPool) startChildren(ctx context.Context) error {
	sup, err := supervise.New(supervise.Config{Name: "run", Disable: supervise.Layers{PIDNamespace: true, Cgroup: true, Subreaper: true},
		Grace: p.cfg.Grace.D() + childMargin, Log: p.log, SkipStartSweep: true})
	if err != nil {
		return fmt.Errorf("supervisor: %w", err)
	}
	if err := sup.Start(ctx); err != nil {
		return fmt.Errorf("start supervisor: %w", err)
	}
	p.sup = sup
	p.sweep(ctx)
	tctx, term := context.WithCancel(context.WithoutCancel(ctx))
	p.term = term
	for i := range p.cfg.Processes {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.child(tctx, i+1)
		}()
	}
	return nil
}

// sweep removes what dead supervisors of earlier runs left (the start-up sweep Start would do,
// done here so that proxyline_orphans_swept_total counts it).
func (p *workerPool) sweep(ctx context.Context) {
	if !p.sup.Layers().Cookie {
		return // no cookie, no sweep: the supervisor logged why at its start
	}
	rep, err := p.sup.SweepDead(ctx)
	if err != nil {
		p.log.Warn("start-up sweep incomplete", "err", err)
	}
	p.metrics.OrphansSwept(rep.Found())
}

// child runs worker n until ctx ends, starting it again (after a pause that doubles up to 30 s)
// whenever it ends on its own: killed, crashed, or unable to work.
func (p *workerPool) child(ctx context.Context, n int) {
	env := []string{"PROXYLINE_DATABASE=" + p.database, "PROXYLINE_LOG_LEVEL=warn"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PROXYLINE_DATABASE=") && !strings.HasPrefix(kv, "PROXYLINE_LOG_LEVEL=") {
			env = append(env, kv)
		}
	}
	args := []string{"worker", "--concurrency", strconv.Itoa(p.cfg.Concurrency), "--parallel", strconv.Itoa(p.cfg.Parallel),
		"--grace", p.cfg.Grace.D().String(), "-t", p.timeout.String()}
	pause := time.Second
	for {
		var done func()
		spec := supervise.Spec{Path: p.exe, Args: args, Env: env, Stderr: p.stderr, Stdout: p.stderr,
			Started: func(pid int) {
				done = p.metrics.TaskStarted()
				p.log.Info("worker process started", "worker", n, "pid", pid)
			}}
		res, err := p.sup.Run(ctx, spec)
		if done != nil {
			done()
		}
		if ctx.Err() != nil {
			return
		}
		p.log.Warn("worker process ended on its own; starting it again", "worker", n, "exit", res.ExitCode,
			"signal", res.Signal, "err", err, "after", pause)
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, 30*time.Second)
	}
}

// Stop stops the workers.
//
// Shutdown order:
//  1. refuse: the workers take no new job (in-process: River stops fetching; children: SIGTERM);
//  2. drain: running jobs finish within workers.grace, the rest are handed back to the queue;
//  3. cut (ctx ended first): in-process jobs are cancelled (handed back); children are SIGKILLed
//     (their jobs are handed back by the next worker's rescuer, within a second on this host);
//  4. wait: for the worker or the children and the supervisor (which removes what it made);
//     bound after the cut: the worker's own, or milliseconds after SIGKILL;
//  5. error: what the worker or the supervisor reported, and ctx's cause after a cut.
func (p *workerPool) Stop(ctx context.Context) error {
	return p.life.Stop(ctx, func(cut context.Context) error {
		if p.w != nil {
			return p.w.Stop(cut)
		}
		p.term()
		ended := make(chan struct{})
		go func() { p.wg.Wait(); close(ended) }()
		var errs []error
		select {
		case <-ended:
		case <-cut.Done():
			errs = append(errs, fmt.Errorf("worker processes: stop cut short: %w", context.Cause(cut)))
		}
		errs = append(errs, p.sup.Stop(cut))
		<-ended
		return errors.Join(errs...)
	})
}
