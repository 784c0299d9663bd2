package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/proxyline/proxyline/internal/lab"
	"github.com/proxyline/proxyline/internal/supervise"
)

// demoOptions are the flags of proxyline demo.
type demoOptions struct {
	Dir     string        // where the database and the lab's files go; "" = a new temporary directory, kept
	Workers int           // worker processes
	Per     int           // proxies of each lab kind
	Chunk   int           // proxies per job
	Timeout time.Duration // per check
	Wait    time.Duration // how long the queue may take to drain
}

func (o *demoOptions) flags(fs *flag.FlagSet) {
	fs.StringVar(&o.Dir, "dir", "", "directory for the SQLite database and the lab's files (default: a new temporary directory, kept afterwards)")
	fs.IntVar(&o.Workers, "workers", 2, "worker processes")
	fs.IntVar(&o.Per, "per-kind", 10, "lab proxies of each kind (live HTTP/SOCKS, liars, transparent, blackholes, ...)")
	fs.IntVar(&o.Chunk, "chunk", 10, "proxies per job")
	fs.DurationVar(&o.Timeout, "t", 3*time.Second, "timeout of one check")
	fs.DurationVar(&o.Wait, "wait", 2*time.Minute, "how long the queue may take to drain")
}

// Validate reports the first bad flag, by name.
func (o *demoOptions) Validate() error {
	switch {
	case o.Workers < 1 || o.Workers > 16:
		return fmt.Errorf("--workers %d: want 1 to 16", o.Workers)
	case o.Per < 1 || o.Per > 1000:
		return fmt.Errorf("--per-kind %d: want 1 to 1000", o.Per)
	case o.Chunk < 1:
		return fmt.Errorf("--chunk %d: must be at least 1", o.Chunk)
	case o.Timeout <= 0 || o.Wait <= 0:
		return errors.New("-t and --wait must be positive")
	}
	return nil
}

func demoCommand() command {
	return command{
		Name:    "demo",
		Summary: "run the whole job against the loopback lab: queue on SQLite, worker processes, pool",
		Run: func(ctx context.Context, env *Env, args []string) error {
			var o demoOptions
			fs := newFlagSet("demo", "[flags]",
				"Starts the loopback lab, enqueues its proxies on a SQLite queue, runs worker processes until the\n"+
					"queue is drained, stops them gracefully, and prints the pool's live proxies (stdout), the status\n"+
					"and a comparison with the lab's truth (stderr). Nothing leaves the machine. It runs the same\n"+
					"commands a user would: enqueue, worker, status, export.")
			o.flags(fs)
			if err := parseOptions(fs, env, args, &o); err != nil {
				return err
			}
			return runDemo(ctx, env, o)
		},
	}
}

// The demo's workers get demoWorkerGrace (their --grace) to finish running jobs after SIGTERM,
// and demoStopMargin more to hand the rest back and exit, before the supervisor kills them.
const (
	demoWorkerGrace = 10 * time.Second
	demoStopMargin  = 5 * time.Second
)

// demo is one run of the demo: its directory, database and lab.
type demo struct {
	env    *Env
	o      demoOptions
	dir    string // the database and the lab's files
	db     string
	labDir string
	lab    *lab.Lab
}

// runDemo is the demo once its flags are valid: the lab, the jobs, the workers until the queue
// is drained, then the pool compared with the lab's truth. Its shutdown order: workers (SIGTERM,
// they drain), then the lab; the database is kept for the user to inspect. Their stop errors are
// joined into the demo's.
func runDemo(ctx context.Context, env *Env, o demoOptions) (err error) {
	d := &demo{env: env, o: o}
	if err := d.start(ctx); err != nil {
		return err
	}
	defer func() { // a lab has nothing to drain: it stops at once
		err = errors.Join(err, d.lab.Stop(context.WithoutCancel(ctx)))
	}()
	if err := d.sub(ctx, io.Discard, "enqueue", "--database", d.db, "--chunk", strconv.Itoa(o.Chunk), "--judge", d.lab.JudgeURL(),
		"--judge-ca", filepath.Join(d.labDir, "ca.pem"), "-t", o.Timeout.String(), filepath.Join(d.labDir, "candidates.txt")); err != nil {
		return err
	}
	w, err := startDemoWorkers(ctx, d)
	if err != nil {
		return err
	}
	defer func() {
		if serr := w.stop(); !errors.Is(err, serr) { // once: the stop below may have returned it
			err = errors.Join(err, serr)
		}
	}()
	if err := d.drain(ctx, w); err != nil {
		return err
	}
	if err := w.stop(); err != nil {
		return err
	}
	return d.report(ctx)
}

// start makes the directory and starts the lab, writing its files there.
func (d *demo) start(ctx context.Context) error {
	d.dir = d.o.Dir
	var err error
	if d.dir == "" {
		if d.dir, err = os.MkdirTemp("", "proxyline-demo-"); err != nil {
			return fmt.Errorf("make demo directory: %w", err)
		}
	} else if err := os.MkdirAll(d.dir, 0o755); err != nil {
		return fmt.Errorf("make demo directory: %w", err)
	}
	d.db, d.labDir = filepath.Join(d.dir, "proxyline.db"), filepath.Join(d.dir, "lab")
	n := d.o.Per
	d.lab, err = lab.Start(ctx, lab.Config{
		HTTP: n, HTTPAuth: n, SOCKS4: n, SOCKS4A: n, SOCKS5: n, SOCKS5Auth: n, Transparent: n, Anonymous: n,
		Refused: n, Blackhole: n, Liar: n, Alter: n, Bare: n, Dir: d.labDir, Log: d.env.Log,
	})
	if err != nil {
		return fmt.Errorf("start lab: %w", err)
	}
	d.env.Log.Info("demo: lab started", "proxies", len(d.lab.Candidates()), "judge", d.lab.JudgeURL(), "dir", d.dir)
	return nil
}

// sub runs a command as a user would type it, in-process, with its stdout to stdout.
func (d *demo) sub(ctx context.Context, stdout io.Writer, args ...string) error {
	e := *d.env
	e.Stdout = stdout
	if code := run(ctx, &e, args); code != ExitOK {
		return fmt.Errorf("proxyline %s: exit %d", args[0], code)
	}
	return nil
}

// drain waits until the queue is drained (status --wait), or a worker ends before that.
func (d *demo) drain(ctx context.Context, w *demoWorkers) error {
	start := time.Now()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-w.exited:
			cancel()
		case <-wctx.Done():
		}
	}()
	err := d.sub(wctx, io.Discard, "status", "--database", d.db, "--wait", d.o.Wait.String())
	select {
	case <-w.exited:
		return errors.Join(errors.New("a worker ended before the queue was drained"), w.stop())
	default:
	}
	if err != nil {
		return fmt.Errorf("the queue did not drain in %v: %w", d.o.Wait, err)
	}
	d.env.Log.Info("demo: queue drained", "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// report prints the live proxies (stdout), the status and the pool compared with the lab's
// truth (stderr), and fails unless the pool is exactly the truth.
func (d *demo) report(ctx context.Context) error {
	if err := d.sub(ctx, d.env.Stdout, "export", "--database", d.db); err != nil {
		return err
	}
	var status, pool bytes.Buffer
	if err := d.sub(ctx, &status, "status", "--database", d.db); err != nil {
		return err
	}
	if err := d.sub(ctx, &pool, "export", "--database", d.db, "--format", "jsonl", "--all"); err != nil {
		return err
	}
	fmt.Fprintf(d.env.Stderr, "\n%s\n\n", bytes.TrimSpace(status.Bytes()))
	outcomes, err := lab.ReadOutcomes(&pool)
	if err != nil {
		return fmt.Errorf("pool export: %w", err)
	}
	// The workers' in-process checker reports class, exit IP and anonymity: all are compared.
	score := lab.Compare(d.lab.Truth(), outcomes, lab.Conditions{Timeout: d.o.Timeout})
	if err := score.Write(d.env.Stderr); err != nil {
		return err
	}
	fmt.Fprintf(d.env.Stderr, "the database is kept: proxyline status --database %s   (or: proxyline ui --database %s)\n", d.db, d.db)
	if !score.OK() {
		return failure(errors.New("the pool does not match the lab's truth"))
	}
	return nil
}

// demoWorkers are the demo's worker processes, each a task of the demo's supervisor: SIGTERM
// (and SIGCONT) to stop, SIGKILL after the grace, nothing left behind, and killed by the kernel
// if the demo dies (parent-death signal).
type demoWorkers struct {
	env       *Env
	sup       *supervise.Supervisor
	term      context.CancelFunc // ends every worker's task: SIGTERM, then SIGKILL after the grace
	ends      chan demoEnd       // one per worker
	exited    chan struct{}      // closed when the first worker ends
	firstExit sync.Once
	stopOnce  sync.Once
	stopErr   error
}

// demoEnd is how one worker's task ended.
type demoEnd struct {
	n   int
	res supervise.Result
	err error
}

// startDemoWorkers starts the demo's supervisor and its worker processes. Two layers are off,
// because a worker is a supervisor itself. The PID namespace: a worker knows itself, and the
// workers beside it, by (host, pid, start time) read from /proc (queue.Identity); in a namespace
// of its own every worker would be pid 2 there, and take its neighbours for dead. The cgroup: a
// worker makes its own cgroups below the one it runs in, so its task cgroup could not be removed
// when it ends (the supervisor's Stop would, with a warning). What is left (process group,
// parent-death signal, subreaper, cookie) is what the demo needs: the workers cannot outlive it.
func startDemoWorkers(ctx context.Context, d *demo) (*demoWorkers, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own executable for the worker processes: %w", err)
	}
	sup, err := supervise.New(supervise.Config{Name: "demo", Disable: supervise.Layers{PIDNamespace: true, Cgroup: true},
		Grace: demoWorkerGrace + demoStopMargin, Log: d.env.Log})
	if err != nil {
		return nil, fmt.Errorf("supervisor: %w", err)
	}
	if err := sup.Start(ctx); err != nil {
		return nil, fmt.Errorf("start supervisor: %w", err)
	}
	tctx, term := context.WithCancel(ctx)
	w := &demoWorkers{env: d.env, sup: sup, term: term, ends: make(chan demoEnd, d.o.Workers), exited: make(chan struct{})}
	spec := supervise.Spec{Path: self, Args: []string{"worker", "--database", d.db, "--concurrency", "4", "--parallel", "50",
		"--grace", demoWorkerGrace.String()}, Env: append(os.Environ(), "PROXYLINE_LOG_LEVEL=warn"),
		Stdout: d.env.Stderr, Stderr: d.env.Stderr}
	for i := range d.o.Workers {
		spec := spec
		spec.Started = func(pid int) { d.env.Log.Info("demo: worker started", "worker", i+1, "pid", pid, "database", d.db) }
		go func() {
			res, err := sup.Run(tctx, spec)
			w.ends <- demoEnd{n: i + 1, res: res, err: err}
			w.firstExit.Do(func() { close(w.exited) })
		}()
	}
	return w, nil
}

// stop stops the workers the way a user or systemd would: SIGTERM, they drain and exit 0;
// SIGKILL after the grace. It reports each worker that did not end cleanly. Idempotent.
func (w *demoWorkers) stop() error {
	w.stopOnce.Do(func() {
		w.term()
		var errs []error
		for range cap(w.ends) {
			e := <-w.ends
			switch {
			case e.res.Signaled:
				errs = append(errs, fmt.Errorf("worker %d: killed by %s", e.n, e.res.Signal))
			case e.res.ExitCode != 0:
				errs = append(errs, fmt.Errorf("worker %d: exit status %d", e.n, e.res.ExitCode))
			case e.err != nil && !errors.Is(e.err, context.Canceled):
				errs = append(errs, fmt.Errorf("worker %d: %w", e.n, e.err))
			}
		}
		errs = append(errs, w.sup.Stop(context.Background()))
		w.stopErr = errors.Join(errs...)
	})
	return w.stopErr
}
