package run

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/proxyline/proxyline/internal/backend"
	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/internal/console"
	"github.com/proxyline/proxyline/internal/lifecycle"
	"github.com/proxyline/proxyline/internal/metrics"
	"github.com/proxyline/proxyline/internal/pool"
	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/internal/rotate"
	"github.com/proxyline/proxyline/internal/secret"
	"github.com/proxyline/proxyline/proxy"
)

// Options configure a Service.
type Options struct {
	// Config is the configuration (LoadConfig or Default), validated.
	Config Config
	// Lab starts the loopback lab first and points the sources, the judge and the rotator's
	// upstream CA at it (see lab.go). Nothing then leaves the machine.
	Lab bool
	// LabPerKind is how many lab proxies of each kind. Default 5.
	LabPerKind int
	// Executable is the proxyline binary worker child processes run. Default os.Executable().
	Executable string
	// Stderr receives the worker child processes' logs. Default: discard.
	Stderr io.Writer
	// Log receives the service's logs. Default: discard.
	Log *slog.Logger
}

// Service is `proxyline run`. Start starts its parts in order; Stop stops them in the reverse
// order (see Stop).
type Service struct {
	o    Options
	cfg  Config // o.Config, with the lab's judge and sources when Lab
	log  *slog.Logger
	life lifecycle.Once

	lab     *labRun
	store   *queue.Store
	metrics *metrics.Metrics
	console *consoleServer
	rotator *rotate.Server
	stack   []part // started parts, in start order
}

// part is one started part of the service, stopped by stop with the shutdown's context.
type part struct {
	name string
	stop func(ctx context.Context) error
}

// New checks o and returns a Service; it touches nothing.
func New(o Options) (*Service, error) {
	if err := o.Config.Validate("config"); err != nil {
		return nil, err
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Stderr == nil {
		o.Stderr = io.Discard
	}
	if o.Executable == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find own executable for the worker processes: %w", err)
		}
		o.Executable = exe
	}
	return &Service{o: o, cfg: o.Config, log: o.Log}, nil
}

// Start starts, in this order: the lab (with Lab), the database (migrated), the console, the
// workers, the rotator, the scheduler, the scrape loop and the pruner. It returns once all
// serve; on error it stops what it started and returns the error. ctx bounds the start only.
func (s *Service) Start(ctx context.Context) error {
	return s.life.Start(func() error {
		err := s.start(ctx)
		if err != nil {
			undo, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.Shutdown.Deadline.D())
			defer cancel()
			err = errors.Join(err, s.stopParts(undo))
		}
		return err
	})
}

func (s *Service) push(name string, stop func(ctx context.Context) error) {
	s.stack = append(s.stack, part{name: name, stop: stop})
}

func (s *Service) start(ctx context.Context) error {
	if s.o.Lab {
		l, err := startLab(ctx, &s.cfg, s.o.LabPerKind, s.log)
		if err != nil {
			return err
		}
		s.lab = l
		s.push("lab", l.stop)
	}
	c := s.cfg
	st, err := queue.Open(ctx, queue.Config{Database: c.Database.URL, Logger: s.log})
	if err != nil {
		return err
	}
	s.store = st
	s.push("database", func(context.Context) error { st.Close(); return nil })
	if s.metrics, err = metrics.New(metrics.Config{Store: st, Logger: s.log}); err != nil {
		return err
	}
	if err := s.startServing(ctx); err != nil {
		return err
	}
	return s.startLoops(ctx)
}

// startServing starts the console, the workers and the rotator.
func (s *Service) startServing(ctx context.Context) error {
	c := s.cfg
	if c.Console.Enabled {
		cs, err := startConsole(ctx, c.Console, s.store, s.metrics, s.log)
		if err != nil {
			return err
		}
		s.console = cs
		s.push("console", cs.stop)
	}
	wp := &workerPool{cfg: c.Workers, timeout: c.Check.Timeout.D(), database: c.Database.URL, store: s.store, metrics: s.metrics,
		stderr: s.o.Stderr, exe: s.o.Executable, log: s.log}
	if err := wp.Start(ctx); err != nil {
		return err
	}
	s.push("workers", wp.Stop)
	if !c.Rotate.Enabled {
		return nil
	}
	rc := rotate.Config{Listen: c.Rotate.Options(), From: rotate.FromPool, Database: c.Database.URL,
		Policy: rotate.Policy(c.Rotate.Policy), Drain: c.Rotate.Drain.D(), Observer: rotatorObserver{s.metrics}, Log: s.log}
	if s.lab != nil {
		rc.UpstreamCA = s.lab.caFile
	}
	r, err := rotate.New(rc)
	if err != nil {
		return fmt.Errorf("rotator: %w", err)
	}
	if err := r.Start(ctx); err != nil {
		return fmt.Errorf("rotator: %w", err)
	}
	s.rotator = r
	drain := c.Rotate.Drain.D()
	s.push("rotator", func(ctx context.Context) error {
		dctx, cancel := context.WithTimeout(ctx, drain)
		defer cancel()
		err := r.Stop(dctx)
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return nil // the drain's own deadline: the rotator cut what was left and logged it
		}
		return err
	})
	return nil
}

// rotatorObserver counts the rotator's attempts per upstream in the service's metrics
// (proxyline_rotator_*): each upstream's series are resolved once, on its first use.
type rotatorObserver struct{ m *metrics.Metrics }

func (o rotatorObserver) Upstream(label string) rotate.AttemptRecorder { return o.m.Upstream(label) }

// startLoops starts the scheduler, the scrape loop and the pruner.
func (s *Service) startLoops(ctx context.Context) error {
	c := s.cfg
	b := pool.Backoff{Interval: c.Schedule.RecheckInterval.D(), Base: c.Schedule.DeadBackoff.D(),
		Factor: c.Schedule.DeadBackoffFactor, Max: c.Schedule.DeadBackoffMax.D()}
	opts, err := backend.JobOptions(c.Check.JudgeConfig(), c.Check.Timeout.D())
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	sc := SchedulerConfig{Store: s.store, Backoff: b, Options: opts, Tick: c.Schedule.Tick.D(),
		Batch: c.Schedule.Batch, Chunk: c.Schedule.Chunk, Lease: c.Schedule.Lease.D(), MaxWaiting: c.Schedule.MaxWaitingJobs, Log: s.log}
	if c.Workers.Processes > 0 {
		// The checks run in the worker processes, which serve no metrics: they are counted here,
		// from the results as the scheduler settles them (in-process workers count their own).
		sc.OnSettled = func(r pool.Settled) {
			s.metrics.ObserveCheck(check.Result{Class: check.Class(r.Class), Proxy: proxy.Proxy{Scheme: proxy.Scheme(r.Scheme)}, Total: r.Total})
		}
	}
	sch, err := NewScheduler(sc)
	if err != nil {
		return err
	}
	if err := sch.Start(ctx); err != nil {
		return err
	}
	s.push("scheduler", sch.Stop)
	sl := newScrapeLoop(c, s.store, s.metrics, b, s.log)
	if err := sl.Start(ctx); err != nil {
		return err
	}
	s.push("scrape", sl.Stop)
	pr := newPruner(c.Retention, s.store, s.log)
	if err := pr.Start(ctx); err != nil {
		return err
	}
	s.push("pruner", pr.Stop)
	attrs := []any{"database", secret.Redact(s.store.Name()), "engine", s.store.Engine(), "workers", workersText(c.Workers),
		"sources", len(c.Scrape.Enabled())}
	if s.console != nil {
		attrs = append(attrs, "console", s.ConsoleURL())
	}
	if s.rotator != nil {
		attrs = append(attrs, "rotator", s.RotatorAddr())
	}
	s.log.Info("run ready", attrs...)
	return nil
}

func workersText(w WorkersConfig) string {
	if w.Processes == 0 {
		return "in-process"
	}
	return fmt.Sprintf("%d processes", w.Processes)
}

// Stop stops the service within ctx's deadline (the shutdown deadline: the caller gives it,
// and cancels ctx on a second signal to cut at once).
//
// Shutdown order, the reverse of the start:
//  1. pruner, scrape loop, scheduler: nothing new is fetched or enqueued (a tick in progress
//     commits or rolls back as a whole);
//  2. rotator: stops accepting connections, drains requests and tunnels for rotate.drain, then
//     closes what is left;
//  3. workers: take no new job; running jobs finish within workers.grace, the rest are handed
//     back to the queue (child processes: SIGTERM, then SIGKILL after their grace);
//  4. console: last, so the UI, API and /metrics answer during the drain; its requests get
//     what is left of ctx;
//  5. database: closed once nothing uses it;
//  6. lab (with Lab): its proxies and judge, then its temporary directory.
//
// Each part's stop is given what is left of ctx; when ctx ends, each cuts what it still holds
// (docs/lifecycle.md). The error joins the parts' errors, each named.
func (s *Service) Stop(ctx context.Context) error {
	return s.life.Stop(ctx, s.stopParts)
}

func (s *Service) stopParts(ctx context.Context) error {
	var errs []error
	for i := len(s.stack) - 1; i >= 0; i-- {
		p := s.stack[i]
		start := time.Now()
		if err := p.stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", p.name, err))
		}
		s.log.Debug("stopped", "part", p.name, "took", time.Since(start).Round(time.Millisecond))
	}
	s.stack = nil
	return errors.Join(errs...)
}

// ConsoleURL is the console's base URL ("" when it is off or not started).
func (s *Service) ConsoleURL() string {
	if s.console == nil {
		return ""
	}
	return "http://" + s.console.addr.String() + "/"
}

// RotatorAddr is the rotator's address ("" when it is off or not started).
func (s *Service) RotatorAddr() string {
	if s.rotator == nil {
		return ""
	}
	return s.rotator.Addr().String()
}

// Database is the database in use (password redacted).
func (s *Service) Database() string {
	if s.store == nil {
		return ""
	}
	return s.store.Name()
}

// consoleServer serves the console behind internal/serve's gate.
type consoleServer struct {
	con  *console.Console
	srv  *http.Server
	addr net.Addr
	done chan error
}

func startConsole(ctx context.Context, c ConsoleConfig, st *queue.Store, m *metrics.Metrics, log *slog.Logger) (*consoleServer, error) {
	gate, err := c.Options().Gate(log)
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	con, err := console.New(console.Config{Store: st, Logger: log, Metrics: m})
	if err != nil {
		return nil, err
	}
	ln, err := gate.Listen()
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	if err := con.Start(ctx); err != nil {
		_ = ln.Close()
		return nil, err
	}
	cs := &consoleServer{con: con, addr: ln.Addr(), done: make(chan error, 1),
		srv: &http.Server{Handler: gate.Wrap(con.Handler()), ReadHeaderTimeout: 10 * time.Second,
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}}
	go func() { cs.done <- cs.srv.Serve(ln) }()
	return cs, nil
}

// stop drains the console's requests while ctx lives, then closes them; then River UI stops.
func (cs *consoleServer) stop(ctx context.Context) error {
	err := cs.srv.Shutdown(ctx)
	if err != nil {
		_ = cs.srv.Close()
	}
	<-cs.done
	return errors.Join(err, cs.con.Stop(ctx))
}
