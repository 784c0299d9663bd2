package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/internal/lab"
	"github.com/proxyline/proxyline/proxy"
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

// runDemo is the demo once its flags are valid. Its shutdown order: workers (SIGTERM, they drain),
// then the lab; the database is kept for the user to inspect.
func runDemo(ctx context.Context, env *Env, o demoOptions) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable for the worker processes: %w", err)
	}
	dir := o.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "proxyline-demo-"); err != nil {
			return fmt.Errorf("make demo directory: %w", err)
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("make demo directory: %w", err)
	}
	db := filepath.Join(dir, "proxyline.db")
	labDir := filepath.Join(dir, "lab")

	n := o.Per
	l, err := lab.Start(ctx, lab.Config{
		HTTP: n, HTTPAuth: n, SOCKS4: n, SOCKS4A: n, SOCKS5: n, SOCKS5Auth: n, Transparent: n, Anonymous: n,
		Refused: n, Blackhole: n, Liar: n, Alter: n, Bare: n, Dir: labDir, Log: env.Log,
	})
	if err != nil {
		return fmt.Errorf("start lab: %w", err)
	}
	defer l.Stop()
	env.Log.Info("demo: lab started", "proxies", len(l.Candidates()), "judge", l.JudgeURL(), "dir", dir)

	// The same commands a user would type, run in-process: enqueue, then status and export at the end.
	sub := func(stdout io.Writer, args ...string) error {
		e := *env
		e.Stdout = stdout
		if code := run(ctx, &e, args); code != ExitOK {
			return fmt.Errorf("proxyline %s: exit %d", args[0], code)
		}
		return nil
	}
	if err := sub(io.Discard, "enqueue", "--database", db, "--chunk", strconv.Itoa(o.Chunk), "--judge", l.JudgeURL(),
		"--judge-ca", filepath.Join(labDir, "ca.pem"), "-t", o.Timeout.String(), filepath.Join(labDir, "candidates.txt")); err != nil {
		return err
	}

	workers := make([]*exec.Cmd, 0, o.Workers)
	defer func() { stopWorkers(env, workers) }()
	for i := range o.Workers {
		cmd := exec.Command(self, "worker", "--database", db, "--concurrency", "4", "--parallel", "50")
		cmd.Env = append(os.Environ(), "PROXYLINE_LOG_LEVEL=warn")
		cmd.Stdout, cmd.Stderr = env.Stderr, env.Stderr
		// Own process group, and killed by the kernel if this process dies: the demo's workers
		// cannot outlive it.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start worker %d: %w", i+1, err)
		}
		workers = append(workers, cmd)
	}
	env.Log.Info("demo: workers started", "workers", o.Workers, "database", db)

	start := time.Now()
	if err := sub(io.Discard, "status", "--database", db, "--wait", o.Wait.String()); err != nil {
		return fmt.Errorf("the queue did not drain in %v: %w", o.Wait, err)
	}
	env.Log.Info("demo: queue drained", "took", time.Since(start).Round(time.Millisecond))
	if err := stopWorkers(env, workers); err != nil {
		return err
	}
	workers = nil

	if err := sub(env.Stdout, "export", "--database", db); err != nil {
		return err
	}
	var status, pool bytes.Buffer
	if err := sub(&status, "status", "--database", db); err != nil {
		return err
	}
	if err := sub(&pool, "export", "--database", db, "--format", "jsonl", "--all"); err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "\n%s\n", bytes.TrimSpace(status.Bytes()))
	v, err := demoVerdict(l.Truth(), pool.Bytes())
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "\nlab truth: %d proxies, %d in the pool; %d live found live, %d false positives, %d false negatives\n",
		v.total, v.pooled, v.truePos, v.falsePos, v.falseNeg)
	fmt.Fprintf(env.Stderr, "the database is kept: proxyline status --database %s   (or: proxyline ui --database %s)\n", db, db)
	if v.falsePos > 0 || v.falseNeg > 0 || v.pooled != v.total {
		return failure(errors.New("the pool does not match the lab's truth"))
	}
	return nil
}

// stopWorkers stops the worker processes the way a user or systemd would: SIGTERM (they drain and
// exit 0), then SIGKILL of the group if one has not exited in time.
func stopWorkers(env *Env, workers []*exec.Cmd) error {
	var errs []error
	for _, w := range workers {
		_ = w.Process.Signal(syscall.SIGTERM)
	}
	for i, w := range workers {
		done := make(chan error, 1)
		go func() { done <- w.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				errs = append(errs, fmt.Errorf("worker %d (pid %d): %w", i+1, w.Process.Pid, err))
			}
		case <-time.After(15 * time.Second):
			env.Log.Warn("demo: worker did not drain in time; killing its process group", "pid", w.Process.Pid)
			if w.Process.Pid > 1 {
				_ = syscall.Kill(-w.Process.Pid, syscall.SIGKILL)
			}
			<-done
			errs = append(errs, fmt.Errorf("worker %d (pid %d) killed after 15s", i+1, w.Process.Pid))
		}
	}
	return errors.Join(errs...)
}

// demoCounts compares the pool with the lab's truth.
type demoCounts struct{ total, pooled, truePos, falsePos, falseNeg int }

// demoVerdict reads the pool (export --all, JSON lines) and counts it against the truth.
func demoVerdict(truth []lab.Truth, pool []byte) (demoCounts, error) {
	alive := map[string]bool{}
	pooled := 0
	for i, line := range bytes.Split(bytes.TrimSpace(pool), []byte("\n")) {
		var r struct{ Proxy, Class string }
		if err := json.Unmarshal(line, &r); err != nil {
			return demoCounts{}, fmt.Errorf("pool export line %d: %w", i+1, err)
		}
		p, err := proxy.Parse(r.Proxy)
		if err != nil {
			return demoCounts{}, fmt.Errorf("pool export line %d: %w", i+1, err)
		}
		pooled++
		alive[p.Addr()] = r.Class == string(check.Alive)
	}
	v := demoCounts{total: len(truth), pooled: pooled}
	for _, t := range truth {
		got := alive[t.Proxy.Addr()]
		switch {
		case got && t.Alive:
			v.truePos++
		case got && !t.Alive:
			v.falsePos++
		case !got && t.Alive:
			v.falseNeg++
		}
	}
	return v, nil
}
