package watch

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/proxyline/proxyline/internal/lifecycle"
	"github.com/proxyline/proxyline/internal/serve"
)

// ServiceConfig configures a Service.
type ServiceConfig struct {
	// Watcher scans. Required.
	Watcher *Watcher
	// Alerter runs the alert command; nil: findings are only logged and exported.
	Alerter *Alerter
	// Gate is where /metrics and /report are served (internal/serve's rule); nil: nowhere.
	Gate *serve.Gate
	// StatePath, when set, is saved after every scan (so a restart keeps the samples and alerts).
	StatePath string
	// Log receives findings and failures. Default: discard.
	Log *slog.Logger
}

// Service is a running watch: it scans at the watch file's interval (sooner when an orphan
// candidate is due), alerts new findings, and serves /metrics and /report (the last report as
// JSON). It follows docs/lifecycle.md.
//
// Shutdown order (Stop): no new scan starts; the scan in progress (its probes, its alert
// commands) finishes while Stop's context lives, else its context is cancelled (probes end, an
// alert command's process group is killed); the loop ends; the state is saved by the loop after
// its last scan; then the HTTP server shuts down (requests in flight finish while the context
// lives, then connections are closed).
type Service struct {
	cfg  ServiceConfig
	log  *slog.Logger
	life lifecycle.Once

	ln     net.Listener
	srv    *http.Server
	served chan error // the HTTP server's result

	quit    chan struct{}      // closed by Stop: no new scan
	cut     context.CancelFunc // cancels the scan in progress
	done    chan struct{}      // closed when the loop ended
	last    atomic.Pointer[Report]
	ranScan chan struct{} // closed after the first scan
}

// NewService checks cfg; it starts nothing.
func NewService(cfg ServiceConfig) (*Service, error) {
	if cfg.Watcher == nil {
		return nil, errors.New("watch service: no watcher")
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg, log: log, quit: make(chan struct{}), done: make(chan struct{}), ranScan: make(chan struct{})}, nil
}

// Start binds the metrics address (when there is a gate) and starts the scan loop; the first
// scan starts at once.
func (s *Service) Start(ctx context.Context) error {
	return s.life.Start(func() error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if g := s.cfg.Gate; g != nil {
			ln, err := g.Listen()
			if err != nil {
				return err
			}
			mux := http.NewServeMux()
			mux.Handle("GET /metrics", s.cfg.Watcher.Metrics().Handler())
			mux.HandleFunc("GET /report", s.report)
			s.ln = ln
			s.srv = &http.Server{Handler: g.Wrap(mux), ReadHeaderTimeout: 10 * time.Second}
			s.served = make(chan error, 1)
			go func() { s.served <- s.srv.Serve(ln) }()
		}
		loopCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		s.cut = cancel
		go s.loop(loopCtx)
		return nil
	})
}

// Addr is the address /metrics is served on ("" without a gate). Valid after Start.
func (s *Service) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Scanned is closed once the first scan is done.
func (s *Service) Scanned() <-chan struct{} { return s.ranScan }

// Last is the last scan's report (nil before the first).
func (s *Service) Last() *Report { return s.last.Load() }

// Stop stops the loop and the server, in the order of the type's doc.
func (s *Service) Stop(ctx context.Context) error {
	return s.life.Stop(ctx, func(cut context.Context) error {
		close(s.quit)
		select {
		case <-s.done:
		case <-cut.Done():
			s.cut()
			<-s.done // a cancelled scan ends within the alert command's WaitDelay
		}
		s.cut()
		if s.srv == nil {
			return nil
		}
		err := s.srv.Shutdown(cut)
		if err != nil {
			s.srv.Close()
		}
		if serr := <-s.served; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
			return serr
		}
		return err
	})
}

func (s *Service) loop(ctx context.Context) {
	defer close(s.done)
	w, file := s.cfg.Watcher, s.cfg.Watcher.cfg.File
	first := true
	for {
		r := w.Scan(ctx)
		s.last.Store(r)
		for _, f := range r.Findings {
			s.log.Warn("watch: finding", "watch", file.Name, "kind", f.Kind, "summary", f.Summary)
		}
		if a := s.cfg.Alerter; a != nil {
			sent, failed := a.Notify(ctx, file.Name, file.Description, r.Findings, r.Time)
			for range sent {
				w.metrics.alert(true)
			}
			for range failed {
				w.metrics.alert(false)
			}
		}
		if s.cfg.StatePath != "" {
			if err := w.State(s.cfg.Alerter).Save(s.cfg.StatePath); err != nil {
				s.log.Error("watch: cannot save state", "err", err)
			}
		}
		if first {
			close(s.ranScan)
			first = false
		}
		wait := file.IntervalOr()
		if !r.next.IsZero() {
			wait = min(wait, time.Until(r.next)+time.Millisecond)
		}
		t := time.NewTimer(wait)
		select {
		case <-s.quit:
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// report serves the last report as JSON.
func (s *Service) report(w http.ResponseWriter, _ *http.Request) {
	r := s.last.Load()
	if r == nil {
		http.Error(w, "no scan yet", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(r)
}
