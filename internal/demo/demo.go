// Package demo is the demo: a lab, a queue, supervised workers, drained and judged against the
// lab's truth. It runs the same commands a user would (enqueue, worker, status, export), through
// the Commands the command line gives it, and the workers as processes of this program.
package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/proxyline/proxyline/internal/lab"
)

// ErrMismatch is the demo's negative outcome: it ran, and the pool is not the lab's truth.
var ErrMismatch = errors.New("the pool does not match the lab's truth")

// Options are the demo's settings (proxyline demo's flags).
type Options struct {
	Dir     string        // where the database and the lab's files go; "" = a new temporary directory, kept
	Workers int           // worker processes
	Per     int           // proxies of each lab kind
	Chunk   int           // proxies per job
	Timeout time.Duration // per check
	Wait    time.Duration // how long the queue may take to drain
}

// Validate reports the first bad option, by its flag's name.
func (o *Options) Validate() error {
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

// Commands runs one proxyline command as a user would type it (args[0] is its name), in-process,
// with its stdout to stdout; it fails unless the command exits 0.
type Commands func(ctx context.Context, stdout io.Writer, args ...string) error

// IO is what the demo gets from the outside world.
type IO struct {
	Stdout, Stderr io.Writer // the live proxies; the status, the comparison and the workers' output
	Log            *slog.Logger
	Run            Commands
}

// The demo's workers get workerGrace (their --grace) to finish running jobs after SIGTERM,
// and stopMargin more to hand the rest back and exit, before the supervisor kills them.
const (
	workerGrace = 10 * time.Second
	stopMargin  = 5 * time.Second
)

// demo is one run of the demo: its directory, database and lab.
type demo struct {
	io     IO
	o      Options
	dir    string // the database and the lab's files
	db     string
	labDir string
	lab    *lab.Lab
}

// Run is the demo with valid options: the lab, the jobs, the workers until the queue is
// drained, then the pool compared with the lab's truth (ErrMismatch unless they match). Its
// shutdown order: workers (SIGTERM, they drain), then the lab; the database is kept for the user
// to inspect. Their stop errors are joined into the demo's.
func Run(ctx context.Context, dio IO, o Options) (err error) {
	d := &demo{io: dio, o: o}
	if err := d.start(ctx); err != nil {
		return err
	}
	defer func() { // a lab has nothing to drain: it stops at once
		err = errors.Join(err, d.lab.Stop(context.WithoutCancel(ctx)))
	}()
	if err := d.enqueue(ctx); err != nil {
		return err
	}
	w, err := startWorkers(ctx, d)
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
		Refused: n, Blackhole: n, Liar: n, Alter: n, Bare: n, Dir: d.labDir, Log: d.io.Log,
	})
	if err != nil {
		return fmt.Errorf("start lab: %w", err)
	}
	d.io.Log.Info("demo: lab started", "proxies", len(d.lab.Candidates()), "judge", d.lab.JudgeURL(), "dir", d.dir)
	return nil
}

// enqueue puts the lab's candidates on the queue, checked against the lab's judge.
func (d *demo) enqueue(ctx context.Context) error {
	return d.io.Run(ctx, io.Discard, "enqueue", "--database", d.db, "--chunk", strconv.Itoa(d.o.Chunk), "--judge", d.lab.JudgeURL(),
		"--judge-ca", filepath.Join(d.labDir, "ca.pem"), "-t", d.o.Timeout.String(), filepath.Join(d.labDir, "candidates.txt"))
}

// drain waits until the queue is drained (status --wait), or a worker ends before that.
func (d *demo) drain(ctx context.Context, w *workers) error {
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
	err := d.io.Run(wctx, io.Discard, "status", "--database", d.db, "--wait", d.o.Wait.String())
	select {
	case <-w.exited:
		return errors.Join(errors.New("a worker ended before the queue was drained"), w.stop())
	default:
	}
	if err != nil {
		return fmt.Errorf("the queue did not drain in %v: %w", d.o.Wait, err)
	}
	d.io.Log.Info("demo: queue drained", "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// report prints the live proxies (stdout), the status and the pool compared with the lab's
// truth (stderr), and returns ErrMismatch unless the pool is exactly the truth.
func (d *demo) report(ctx context.Context) error {
	if err := d.io.Run(ctx, d.io.Stdout, "export", "--database", d.db); err != nil {
		return err
	}
	var status, pool bytes.Buffer
	if err := d.io.Run(ctx, &status, "status", "--database", d.db); err != nil {
		return err
	}
	if err := d.io.Run(ctx, &pool, "export", "--database", d.db, "--format", "jsonl", "--all"); err != nil {
		return err
	}
	fmt.Fprintf(d.io.Stderr, "\n%s\n\n", bytes.TrimSpace(status.Bytes()))
	outcomes, err := lab.ReadOutcomes(&pool)
	if err != nil {
		return fmt.Errorf("pool export: %w", err)
	}
	// The workers' in-process checker reports class, exit IP and anonymity: all are compared.
	score := lab.Compare(d.lab.Truth(), outcomes, lab.Conditions{Timeout: d.o.Timeout})
	if err := score.Write(d.io.Stderr); err != nil {
		return err
	}
	fmt.Fprintf(d.io.Stderr, "the database is kept: proxyline status --database %s   (or: proxyline ui --database %s)\n", d.db, d.db)
	if !score.OK() {
		return ErrMismatch
	}
	return nil
}
