package cli

import (
	"cmp"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/internal/check/external"
	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/internal/supervise"
	"github.com/proxyline/proxyline/proxy"
)

// workerOptions are the flags of proxyline worker.
type workerOptions struct {
	database    string
	concurrency int
	parallel    int
	exec        string
	pty         bool
	grace       time.Duration
	timeout     time.Duration
	jobTimeout  time.Duration
	rescueAfter time.Duration
	disable     string
}

// Validate checks the flags.
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
	}
	if _, err := supervise.ParseLayers(o.disable); err != nil {
		errs = append(errs, fmt.Errorf("--disable-layers: %w", err))
	}
	if err := (queue.Config{Database: o.database}).Validate(); err != nil {
		errs = append(errs, fmt.Errorf("--database: %w", err))
	}
	if o.exec != "" {
		// Validate the template now (with a placeholder runner), not at the first job.
		c := &external.Checker{Template: o.exec, Judge: "http://127.0.0.1/", Runner: (*supervise.Supervisor)(nil)}
		if err := c.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("--exec: %w", err))
		}
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
		Run:     runWorker,
	}
}

func runWorker(ctx context.Context, env *Env, args []string) error {
	o := &workerOptions{}
	fs := newFlagSet("worker", "[flags]",
		"Takes check jobs from the queue and writes their results to the pool. The first SIGTERM or\n"+
			"SIGINT stops taking jobs and lets running ones finish within --grace, then hands the rest\n"+
			"back to the queue; a second one stops at once. Exits 0 after a clean drain.")
	databaseFlag(fs, &o.database)
	fs.IntVar(&o.concurrency, "concurrency", 8, "jobs (chunks) worked at once; more than --parallel/chunk keeps every proxy slot busy while jobs wait on their slowest proxies")
	fs.IntVar(&o.parallel, "parallel", 256, "proxies checked at once by this worker, shared by its running jobs (with --exec: the tool's {concurrency})")
	fs.StringVar(&o.exec, "exec", "", "external checker command template, run under supervision per chunk (default: in-process checker)")
	fs.BoolVar(&o.pty, "exec-pty", false, "run the --exec checker on a pseudo-terminal (for tools that need one)")
	fs.StringVar(&o.disable, "disable-layers", "", "switch supervision layers off, comma-separated (process_group, pdeathsig, cgroup, pid_namespace, subreaper, cookie, all): for diagnosis and for proving that the harness catches what they prevent")
	fs.DurationVar(&o.grace, "grace", 10*time.Second, "time running jobs get to finish after the first signal")
	fs.DurationVar(&o.timeout, "t", 0, "check timeout for jobs that carry none (default 10s)")
	fs.DurationVar(&o.jobTimeout, "job-timeout", 0, "time one job may take (default 5m)")
	fs.DurationVar(&o.rescueAfter, "rescue-after", 0, "hand back jobs running longer than this, from any machine (default job timeout + 1m)")
	if err := parseOptions(fs, env, args, o); err != nil {
		return err
	}

	// Become a supervisor (subreaper, start-up sweep) before taking any job.
	off, _ := supervise.ParseLayers(o.disable) // validated above
	sup, err := supervise.New(supervise.Config{Name: "worker", Disable: off, Log: env.Log})
	if err != nil {
		return fmt.Errorf("supervisor: %w", err)
	}
	if err := sup.Start(ctx); err != nil {
		return fmt.Errorf("start supervisor: %w", err)
	}
	defer sup.Stop()

	st, err := queue.Open(ctx, queue.Config{Database: o.database, Logger: env.Log})
	if err != nil {
		return err
	}
	defer st.Close()

	newChecker, backend := inProcessChecker(o, env), "inprocess"
	if o.exec != "" {
		newChecker, backend = execChecker(o, env, sup), "exec"
	}
	w, err := st.NewWorker(queue.WorkerConfig{
		NewChecker:           newChecker,
		ParseProxy:           proxy.Parse,
		Concurrency:          o.concurrency,
		Grace:                o.grace,
		Backend:              backend,
		Layers:               layerNames(sup.Layers()),
		JobTimeout:           o.jobTimeout,
		RescueStuckJobsAfter: o.rescueAfter,
		Logger:               env.Log,
	})
	if err != nil {
		return usageError("%v", err)
	}
	if err := w.Start(ctx); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-w.Stopped():
		return errors.Join(errors.New("worker stopped on its own"), w.Stop())
	}
	go func() {
		select {
		case <-env.Force:
			w.Abort()
		case <-w.Stopped():
		}
	}()
	return w.Stop()
}

// inProcessChecker builds check.Checkers for the jobs' options, one per distinct options for the
// worker's life (jobs of one enqueue share them): New and Prepare, which asks the judge, run once,
// not once per job. A Checker holds only read-only configuration, so sharing it is safe.
func inProcessChecker(o *workerOptions, env *Env) queue.NewChecker {
	slots := queue.NewSlots(o.parallel) // shared by every job of this worker
	var mu sync.Mutex
	prepared := map[queue.CheckOptions]queue.Checker{} // guarded by mu
	return func(ctx context.Context, jo queue.CheckOptions) (queue.Checker, error) {
		mu.Lock()
		defer mu.Unlock()
		if c, ok := prepared[jo]; ok {
			return c, nil
		}
		opts := check.Options{Judge: jo.Judge, JudgeStatus: jo.ExpectStatus, JudgeKeyword: jo.ExpectKeyword,
			Timeout: jo.Timeout, Log: env.Log}
		if opts.Timeout == 0 {
			opts.Timeout = o.timeout
		}
		pem := jo.JudgeCAPEM
		if jo.JudgeCAPath != "" {
			b, err := os.ReadFile(jo.JudgeCAPath)
			if err != nil {
				return nil, fmt.Errorf("judge CA: %w", err)
			}
			pem = string(b)
		}
		if pem != "" {
			roots, err := x509.SystemCertPool()
			if err != nil || roots == nil {
				roots = x509.NewCertPool()
			}
			if !roots.AppendCertsFromPEM([]byte(pem)) {
				return nil, errors.New("judge CA: no certificate in the PEM")
			}
			opts.RootCAs = roots
		}
		c, err := check.New(opts)
		if err != nil {
			return nil, err
		}
		if err := c.Prepare(ctx); err != nil {
			return nil, err
		}
		prepared[jo] = queue.PerProxy(c.Check, slots)
		return prepared[jo], nil
	}
}

// execChecker builds external checkers, run under the worker's supervisor. The tool reports only
// which proxies are alive; the others are recorded with class dead.
func execChecker(o *workerOptions, env *Env, sup *supervise.Supervisor) queue.NewChecker {
	return func(_ context.Context, jo queue.CheckOptions) (queue.Checker, error) {
		c := &external.Checker{Template: o.exec, Timeout: cmp.Or(jo.Timeout, o.timeout), Concurrency: o.parallel,
			Judge: jo.Judge, PTY: o.pty, Runner: sup, Log: env.Log}
		if err := c.Validate(); err != nil {
			return nil, err
		}
		return execChunk{c}, nil
	}
}

// execChunk adapts external.Checker to queue.Checker: one result per proxy, the ones the tool did
// not report alive with class dead (a tool says nothing more).
type execChunk struct{ c *external.Checker }

func (e execChunk) CheckChunk(ctx context.Context, ps []proxy.Proxy) ([]check.Result, error) {
	return e.c.Results(ctx, ps)
}

// layerNames lists the names of the layers in force.
func layerNames(l supervise.Layers) []string { return l.Names() }
