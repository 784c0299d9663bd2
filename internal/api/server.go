// Package api is proxyline's JSON HTTP API over the queue's database (docs/api.md): the pool
// filtered and paged, one proxy's history, the sources and their yield, a list put on the queue,
// a proxy picked by policy, the queue's depth by state and the workers with their supervision
// layers. Server is an http.Handler serving under /api/v1/; the console (internal/console) mounts
// it beside the web UI and the metrics, behind internal/serve's gate.
//
// Errors are JSON, {"error": "..."}, with the status that fits: 400 for a bad parameter (the
// message names it), 404 for what does not exist, 405 for a method an endpoint does not take,
// 413 for a list over the size cap, 500 for the database. Proxy passwords are masked unless the
// request says credentials=1 and the gate verified its credentials (serve.Authenticated).
package api

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/internal/secret"
	"github.com/proxyline/proxyline/internal/serve"
)

// Config configures a Server. Zero values mean the defaults named in each field's doc.
type Config struct {
	// Store is the queue's database. Required.
	Store *queue.Store
	// Logger receives errors the clients see as 500. Default: discard.
	Logger *slog.Logger
	// QueryTimeout bounds each request's database work. Default 10 s.
	QueryTimeout time.Duration
	// MaxEnqueueBytes caps the body of POST /api/v1/enqueue. Default 32 MiB.
	MaxEnqueueBytes int64
	// MaxEnqueueProxies caps the proxies of one enqueue. Default 1,000,000.
	MaxEnqueueProxies int
	// Authenticated says whether a request's client proved who it is, which credentials=1
	// needs. Default serve.Authenticated: the gate verified its credentials.
	Authenticated func(*http.Request) bool
	// Now is the clock of checked_within and since. Default time.Now.
	Now func() time.Time
}

// Defaults of Config.
const (
	DefaultQueryTimeout      = 10 * time.Second
	DefaultMaxEnqueueBytes   = 32 << 20
	DefaultMaxEnqueueProxies = 1_000_000
)

// Server serves the API. Its only state is the round-robin cursor of /pick.
type Server struct {
	cfg Config
	mux *http.ServeMux
	rr  atomic.Uint64 // round-robin cursor of /pick, this server instance's
}

// New returns a Server for cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("api: Config.Store is required")
	}
	if cfg.QueryTimeout < 0 || cfg.MaxEnqueueBytes < 0 || cfg.MaxEnqueueProxies < 0 {
		return nil, errors.New("api: timeouts and limits must not be negative")
	}
	cfg.QueryTimeout = cmp.Or(cfg.QueryTimeout, DefaultQueryTimeout)
	cfg.MaxEnqueueBytes = cmp.Or(cfg.MaxEnqueueBytes, DefaultMaxEnqueueBytes)
	cfg.MaxEnqueueProxies = cmp.Or(cfg.MaxEnqueueProxies, DefaultMaxEnqueueProxies)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Authenticated == nil {
		cfg.Authenticated = serve.Authenticated
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux()}
	s.route("/api/v1/proxies", http.MethodGet, s.proxies)
	s.route("/api/v1/proxies/{addr}/history", http.MethodGet, s.history)
	s.route("/api/v1/pick", http.MethodGet, s.pick)
	s.route("/api/v1/sources", http.MethodGet, s.sources)
	s.route("/api/v1/queue", http.MethodGet, s.queueDepth)
	s.route("/api/v1/workers", http.MethodGet, s.workers)
	s.route("/api/v1/status", http.MethodGet, s.status)
	s.route("/api/v1/enqueue", http.MethodPost, s.enqueue)
	s.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path+" (see docs/api.md)")
	})
	return s, nil
}

// ServeHTTP serves the API's paths (/api/...).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	s.mux.ServeHTTP(w, r)
}

// route registers h for path and method; other methods get a JSON 405 (HEAD goes with GET).
func (s *Server) route(path, method string, h func(http.ResponseWriter, *http.Request) error) {
	s.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method && !(method == http.MethodGet && r.Method == http.MethodHead) {
			w.Header().Set("Allow", method)
			writeError(w, http.StatusMethodNotAllowed, r.Method+" "+path+": this endpoint takes "+method)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.QueryTimeout)
		defer cancel()
		if err := h(w, r.WithContext(ctx)); err != nil {
			s.fail(w, r, err)
		}
	})
}

// httpError is an error with the status it answers.
type httpError struct {
	status int
	msg    string
	extra  map[string]any // more fields of the JSON answer
}

func (e *httpError) Error() string { return e.msg }

func statusError(status int, msg string) error { return &httpError{status: status, msg: msg} }

// fail answers err: its own status for an httpError or a ParamError (400), 503 for a timeout,
// 500 (logged, masked) for anything else.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var he *httpError
	var pe *ParamError
	switch {
	case errors.As(err, &he):
		writeJSON(w, he.status, errorBody(he.msg, he.extra))
	case errors.As(err, &pe):
		writeError(w, http.StatusBadRequest, pe.Error())
	case errors.Is(err, context.DeadlineExceeded):
		s.cfg.Logger.Warn("api request timed out", "path", r.URL.Path, "err", secret.Error(err))
		writeError(w, http.StatusServiceUnavailable, "the database did not answer within "+s.cfg.QueryTimeout.String())
	case r.Context().Err() != nil:
		// The client went away: nobody reads the answer.
	default:
		s.cfg.Logger.Error("api request failed", "path", r.URL.Path, "err", secret.Error(err))
		writeError(w, http.StatusInternalServerError, secret.Redact(err.Error()))
	}
}

func errorBody(msg string, extra map[string]any) map[string]any {
	body := map[string]any{"error": msg}
	for k, v := range extra {
		body[k] = v
	}
	return body
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// writeJSON writes v as indented JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // a client that went away: nothing to do
}

// credentials says whether a request that asked for passwords may have them: only an
// authenticated one (403 otherwise, so that a client never mistakes a masked password for one).
func (s *Server) credentials(r *http.Request, asked bool) (bool, error) {
	if !asked {
		return false, nil
	}
	if !s.cfg.Authenticated(r) {
		return false, statusError(http.StatusForbidden,
			"credentials=1 needs an authenticated request: serve with --auth-file (or --auth) and send those credentials")
	}
	return true, nil
}
