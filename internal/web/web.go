// Package web is proxyline's web UI: server-rendered pages (Go's html/template) of the pool as a
// filterable table whose columns sort in the browser, a proxy's history with a latency chart
// (inline SVG drawn by the server), the sources and their yield, the queue's depth by state and
// the workers with the supervision layers in force for each. A few lines of plain JavaScript
// (static/app.js) sort tables; everything is embedded, nothing comes from elsewhere, and the
// Content-Security-Policy allows nothing else. The pages read the database through the same
// functions as the JSON API (internal/api); proxy passwords are always masked here.
//
// The console (internal/console) mounts the Handler at / beside the API, the metrics and River UI.
package web

import (
	"bytes"
	"cmp"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/proxyline/proxyline/internal/api"
	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/internal/secret"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// ContentSecurityPolicy is sent with every page: scripts, styles and images only from this
// server (no inline script, no CDN), no frames, forms only to this server.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// Config configures a Handler. Zero values mean the defaults named in each field's doc.
type Config struct {
	// Store is the queue's database. Required.
	Store *queue.Store
	// Logger receives errors the pages show as 500. Default: discard.
	Logger *slog.Logger
	// QueryTimeout bounds each page's database work. Default 10 s.
	QueryTimeout time.Duration
	// Now is the clock of the ages shown and of checked_within. Default time.Now.
	Now func() time.Time
}

// Handler serves the pages and their static files.
type Handler struct {
	cfg    Config
	pages  map[string]*template.Template
	mux    *http.ServeMux
	static http.Handler
}

// pageNames are the templates that are pages (each with layout.html).
var pageNames = []string{"pool", "proxy", "sources", "queue", "workers", "error"}

// New returns a Handler for cfg.
func New(cfg Config) (*Handler, error) {
	if cfg.Store == nil {
		return nil, errors.New("web: Config.Store is required")
	}
	cfg.QueryTimeout = cmp.Or(cfg.QueryTimeout, api.DefaultQueryTimeout)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	h := &Handler{cfg: cfg, pages: map[string]*template.Template{}, mux: http.NewServeMux()}
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(h.funcs()).ParseFS(templateFiles, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("web: template %s: %w", name, err)
		}
		h.pages[name] = t
	}
	static, err := fs.Sub(staticFiles, "static")
	if err != nil {
		return nil, err
	}
	h.static = http.StripPrefix("/static/", http.FileServerFS(static))
	h.mux.HandleFunc("GET /{$}", h.page(h.pool))
	h.mux.HandleFunc("GET /proxy/{addr}", h.page(h.proxy))
	h.mux.HandleFunc("GET /sources", h.page(h.sources))
	h.mux.HandleFunc("GET /queue", h.page(h.queue))
	h.mux.HandleFunc("GET /workers", h.page(h.workers))
	h.mux.HandleFunc("GET /static/", h.serveStatic)
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.render(w, http.StatusNotFound, view{Title: "Not found", Page: "error", Error: "There is no page " + r.URL.Path + " here."})
	})
	return h, nil
}

// ServeHTTP serves the UI.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Security-Policy", ContentSecurityPolicy)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("X-Frame-Options", "DENY")
	h.mux.ServeHTTP(w, r)
}

func (h *Handler) serveStatic(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-cache")
	h.static.ServeHTTP(w, r)
}

// view is what layout.html renders.
type view struct {
	Title    string
	Page     string // the template, and the navigation entry marked current
	Error    string
	Database string
	Now      time.Time
	Data     any
}

// page adapts a page function: it gets a context bounded by the query timeout, and its error is
// shown as a page with the status that fits.
func (h *Handler) page(fn func(r *http.Request) (view, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), h.cfg.QueryTimeout)
		defer cancel()
		v, err := fn(r.WithContext(ctx))
		status := http.StatusOK
		if err != nil {
			status, v.Error = h.explain(r, err)
			if v.Page == "" || v.Data == nil {
				v.Page = "error"
			}
		}
		h.render(w, status, v)
	}
}

// notFound is an error page's status and text.
type notFound string

func (e notFound) Error() string { return string(e) }

// explain returns the status and the message for a page's error.
func (h *Handler) explain(r *http.Request, err error) (int, string) {
	var pe *api.ParamError
	var nf notFound
	switch {
	case errors.As(err, &pe):
		return http.StatusBadRequest, pe.Error()
	case errors.As(err, &nf):
		return http.StatusNotFound, nf.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, "The database did not answer within " + h.cfg.QueryTimeout.String() + "."
	}
	h.cfg.Logger.Error("web page failed", "path", r.URL.Path, "err", secret.Error(err))
	return http.StatusInternalServerError, secret.Redact(err.Error())
}

// render renders v into a buffer first, so that a template error is a clean 500, not half a
// page.
func (h *Handler) render(w http.ResponseWriter, status int, v view) {
	v.Database, v.Now = h.cfg.Store.Name(), h.cfg.Now()
	if v.Title == "" {
		v.Title = http.StatusText(status)
	}
	t := h.pages[v.Page]
	if t == nil {
		t = h.pages["error"]
	}
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, "layout", v); err != nil {
		h.cfg.Logger.Error("web template failed", "page", v.Page, "err", err)
		http.Error(w, "template error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// funcs are the templates' functions.
func (h *Handler) funcs() template.FuncMap {
	return template.FuncMap{
		"ago":        func(t time.Time) string { return ago(h.cfg.Now(), t) },
		"rfc3339":    func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"short":      func(s string) string { return shorten(s, 60) },
		"pct":        func(f float64) string { return fmt.Sprintf("%.0f%%", f*100) },
		"proxyURL":   func(addr string) string { return "/proxy/" + url.PathEscape(addr) },
		"pathEscape": url.PathEscape,
	}
}

// ago says how long before now t was, roughly: "just now", "42s ago", "5m ago", "3h ago", "2d
// ago"; "never" for the zero time.
func ago(now, t time.Time) string {
	if t.IsZero() || t.Unix() <= 0 {
		return "never"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "in the future"
	case d < time.Second:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

// shorten cuts s to n bytes at most, on a rune boundary, marking the cut.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := strings.ToValidUTF8(s[:n], "")
	return cut + "…"
}
