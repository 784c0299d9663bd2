package lab

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/proxyline/proxyline/internal/lifecycle"
	"github.com/proxyline/proxyline/proxy"
)

// Source formats, in the order sources take them (source i has SourceFormats()[i%5]).
const (
	SourceText    = "text"    // mubeng's lines, text/plain
	SourceJSON    = "json"    // {"data":{"proxies":[{ip,port,protocol,username,password}]}}, json_path data.proxies
	SourceCSV     = "csv"     // ip,port,protocol,username,password
	SourceHTML    = "html"    // an HTML table with those columns
	SourceGarbage = "garbage" // the candidates inside prose, times, version numbers and markup, text/plain
)

// SourceFormats lists the formats sources rotate through.
func SourceFormats() []string {
	return []string{SourceText, SourceJSON, SourceCSV, SourceHTML, SourceGarbage}
}

// Hostile source kinds, each served at /hostile/<kind>. Each must end with a clear per-source
// error in a scraper, within its limits.
const (
	HostileHuge          = "huge"           // 1 GiB of valid lines, with a Content-Length: past any sane size cap
	HostileEndless       = "endless"        // valid lines forever, chunked
	HostileSlowDrip      = "slow-drip"      // one byte every 200 ms, forever: only a timeout ends it
	HostileBinary        = "binary"         // 64 KiB of random bytes, application/octet-stream
	HostileMalformedJSON = "malformed-json" // application/json cut in the middle of an object
	HostileRedirectLoop  = "redirect-loop"  // /hostile/redirect-loop → /hostile/redirect-loop-2 → back
	HostileWrongType     = "wrong-type"     // says application/json, serves an HTML page
	HostileGzipBomb      = "gzip-bomb"      // 64 KiB of gzip that inflates to 64 MiB of newlines
	HostileStatus500     = "status-500"     // always HTTP 500 (retried, then an error)
	HostileNotFound      = "not-found"      // HTTP 404 (not retried)
)

// HostileKinds lists the hostile kinds.
func HostileKinds() []string {
	return []string{HostileHuge, HostileEndless, HostileSlowDrip, HostileBinary, HostileMalformedJSON,
		HostileRedirectLoop, HostileWrongType, HostileGzipBomb, HostileStatus500, HostileNotFound}
}

// DefaultSlowSourceDelay is SourcesConfig.SlowDelay's default.
const DefaultSlowSourceDelay = time.Minute

// SourcesConfig configures a source server. Zero values mean the defaults.
type SourcesConfig struct {
	// Candidates are served, split into N contiguous parts, one per source.
	Candidates []proxy.Proxy
	// N is the number of sources. Default 10 (never more than the candidates, at least 1).
	N int
	// Slow is how many of the sources (the last ones) are slow: they send the first half of
	// their body at once, then wait SlowDelay before the rest, so a scraper stopped meanwhile
	// has nothing complete from them.
	Slow int
	// SlowDelay is how long slow sources stall. Default DefaultSlowSourceDelay.
	SlowDelay time.Duration
	// Dir, if set, receives sources.txt (one URL per line, good and slow sources),
	// sources.toml (the same as a scrape configuration, with formats and JSON paths) and
	// hostile.toml (one source per hostile kind).
	Dir string
	// Log receives diagnostics. Default: discard.
	Log *slog.Logger
}

// SourceInfo describes one served source.
type SourceInfo struct {
	Name     string
	URL      string
	Format   string // one of the Source* formats
	JSONPath string
	Slow     bool
	Proxies  []proxy.Proxy // what it lists
}

// Sources is a loopback HTTP server of proxy list sources (on 127.0.0.2, like the judge): the
// candidates in every format, plus hostile sources. It has the lifecycle of every long-lived
// service (docs/lifecycle.md).
type Sources struct {
	cfg     SourcesConfig
	infos   []SourceInfo
	bodies  [][]byte // per source, with its content type
	types   []string
	etags   []string
	started time.Time
	base    string

	life lifecycle.Once
	srv  *http.Server
	ln   net.Listener
	quit chan struct{} // closed by Stop: slow and endless handlers return
	done chan struct{} // closed when Serve returned

	bombOnce sync.Once
	bomb     []byte

	mu     sync.Mutex
	full   map[string]int // guarded by mu: 200 answers by path
	notMod map[string]int // guarded by mu: 304 answers by path
}

// NewSources prepares a source server; Start serves it.
func NewSources(cfg SourcesConfig) *Sources {
	cfg.N = max(min(cmp.Or(cfg.N, 10), len(cfg.Candidates)), 1)
	cfg.Slow = min(max(cfg.Slow, 0), cfg.N)
	cfg.SlowDelay = cmp.Or(cfg.SlowDelay, DefaultSlowSourceDelay)
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Sources{cfg: cfg, full: map[string]int{}, notMod: map[string]int{}, quit: make(chan struct{}), done: make(chan struct{})}
}

// Start listens on 127.0.0.2 (a free port), renders every source, writes the files and serves.
// It returns once the server accepts connections. ctx bounds the start-up only (an ended ctx
// fails it); only Stop ends the server. lifecycle.ErrStarted when called twice,
// lifecycle.ErrStopped after Stop.
func (s *Sources) Start(ctx context.Context) error {
	return s.life.Start(func() error { return s.start(ctx) })
}

func (s *Sources) start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("source server: %w", err)
	}
	ln, err := net.Listen("tcp4", netip.AddrPortFrom(judgeIP(), 0).String())
	if err != nil {
		return fmt.Errorf("source server: %w", err)
	}
	s.ln, s.started = ln, time.Now().UTC().Truncate(time.Second)
	s.base = "http://" + ln.Addr().String()
	s.render()
	if s.cfg.Dir != "" {
		if err := s.writeFiles(s.cfg.Dir); err != nil {
			_ = ln.Close()
			return err
		}
	}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(s.cfg.Log.Handler(), slog.LevelDebug)}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.cfg.Log.Error("source server stopped", "err", err)
		}
	}()
	return nil
}

// Stop stops the server and returns once it has stopped. It is idempotent, safe without Start,
// and safe to call from several goroutines (docs/lifecycle.md).
//
// Shutdown order:
//  1. refuse: the listener closes;
//  2. drain: none for slow and endless answers (they end at once: nothing in them is worth
//     finishing); other requests in flight may finish while ctx lives;
//  3. cut (ctx ended first): every connection is closed;
//  4. wait: the server's goroutine ends; bound after the cut: milliseconds;
//  5. error: requests cut (wrapping ctx's cause).
func (s *Sources) Stop(ctx context.Context) error {
	return s.life.Stop(ctx, s.stop)
}

func (s *Sources) stop(cut context.Context) error {
	close(s.quit)
	var err error
	if serr := s.srv.Shutdown(cut); serr != nil {
		_ = s.srv.Close()
		err = fmt.Errorf("source server: stop cut short, connections closed: %w", context.Cause(cut))
	}
	<-s.done
	return err
}

// sourcesCloser stops a source server at once, as the lab closes its listeners (a closer of
// the lab's).
type sourcesCloser struct{ s *Sources }

func (c sourcesCloser) Close() error {
	cut, cancel := context.WithCancel(context.Background())
	cancel()
	return c.s.Stop(cut)
}

// Infos returns the good and slow sources, in order.
func (s *Sources) Infos() []SourceInfo { return append([]SourceInfo(nil), s.infos...) }

// HostileURL returns the URL of a hostile kind.
func (s *Sources) HostileURL(kind string) string { return s.base + "/hostile/" + kind }

// Answers returns how many full (200) and not-modified (304) answers a path got.
func (s *Sources) Answers(path string) (full, notModified int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.full[path], s.notMod[path]
}

// render builds every source's body once.
func (s *Sources) render() {
	n, ps := s.cfg.N, s.cfg.Candidates
	formats := SourceFormats()
	for i := range n {
		part := ps[i*len(ps)/n : (i+1)*len(ps)/n]
		info := SourceInfo{Name: fmt.Sprintf("lab-%d", i+1), URL: fmt.Sprintf("%s/s/%d", s.base, i+1),
			Format: formats[i%len(formats)], Slow: i >= n-s.cfg.Slow, Proxies: part}
		body, ctype := renderSource(info.Format, part)
		if info.Format == SourceJSON {
			info.JSONPath = "data.proxies"
		}
		sum := sha256.Sum256(body)
		s.infos = append(s.infos, info)
		s.bodies = append(s.bodies, body)
		s.types = append(s.types, ctype)
		s.etags = append(s.etags, `"`+hex.EncodeToString(sum[:8])+`"`)
	}
}

// renderSource writes proxies in a format, and gives its content type.
func renderSource(format string, ps []proxy.Proxy) ([]byte, string) {
	var b bytes.Buffer
	switch format {
	case SourceJSON:
		type rec struct {
			IP       string `json:"ip"`
			Port     int    `json:"port"`
			Protocol string `json:"protocol,omitempty"`
			Username string `json:"username,omitempty"`
			Password string `json:"password,omitempty"`
		}
		recs := make([]rec, len(ps))
		for i, p := range ps {
			recs[i] = rec{p.Host, int(p.Port), string(p.Scheme), p.User, p.Password}
		}
		_ = json.NewEncoder(&b).Encode(map[string]any{"data": map[string]any{"proxies": recs, "total": len(ps)}, "ok": true})
		return b.Bytes(), "application/json"
	case SourceCSV:
		w := csv.NewWriter(&b)
		_ = w.Write([]string{"ip", "port", "protocol", "username", "password"})
		for _, p := range ps {
			_ = w.Write([]string{p.Host, strconv.Itoa(int(p.Port)), string(p.Scheme), p.User, p.Password})
		}
		w.Flush()
		return b.Bytes(), "text/csv; charset=utf-8"
	case SourceHTML:
		b.WriteString("<!DOCTYPE html><html><head><title>Free proxies</title><script>var last = \"10.9.9.9:9\";</script></head><body>\n")
		b.WriteString("<table id=\"list\"><thead><tr><th>IP Address</th><th>Port</th><th>Protocol</th><th>User</th><th>Password</th></tr></thead><tbody>\n")
		for _, p := range ps {
			fmt.Fprintf(&b, "<tr><td>%s</td><td>%d</td><td>%s</td><td>%s</td><td>%s</td></tr>\n", p.Host, p.Port,
				p.Scheme, html.EscapeString(p.User), html.EscapeString(p.Password))
		}
		b.WriteString("</tbody></table><p>Updated 12:30:45 UTC.</p></body></html>\n")
		return b.Bytes(), "text/html; charset=utf-8"
	case SourceGarbage:
		b.WriteString("Free proxy list v2.3.1 -- updated 2026-12-01 12:30:45 UTC, see docs at port 443 or 8080.\n")
		for i, p := range ps {
			fmt.Fprintf(&b, "#%d found %s (elite, %d ms, uptime 99.%d%%) checked at 10:%02d:%02d;", i+1, p.String(), 50+i, i%10, i%60, i%60)
			if i%3 == 2 {
				b.WriteString(" <br/>random text 1.2.3 and 12:00 and a@b.c\n")
			}
		}
		b.WriteString("\n-- end --\n")
		return b.Bytes(), "text/plain; charset=utf-8"
	}
	for _, p := range ps {
		b.WriteString(p.String())
		b.WriteByte('\n')
	}
	return b.Bytes(), "text/plain; charset=utf-8"
}

// ServeHTTP serves /s/N and /hostile/KIND.
func (s *Sources) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "GET only", http.StatusMethodNotAllowed)
		return
	}
	if kind, ok := strings.CutPrefix(r.URL.Path, "/hostile/"); ok {
		s.serveHostile(w, r, kind)
		return
	}
	n, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/s/"))
	if !strings.HasPrefix(r.URL.Path, "/s/") || err != nil || n < 1 || n > len(s.infos) {
		http.NotFound(w, r)
		return
	}
	i := n - 1
	w.Header().Set("ETag", s.etags[i])
	w.Header().Set("Last-Modified", s.started.Format(http.TimeFormat))
	if r.Header.Get("If-None-Match") == s.etags[i] {
		s.count(s.notMod, r.URL.Path)
		w.WriteHeader(http.StatusNotModified)
		return
	}
	s.count(s.full, r.URL.Path)
	w.Header().Set("Content-Type", s.types[i])
	body := s.bodies[i]
	if !s.infos[i].Slow {
		_, _ = w.Write(body)
		return
	}
	half := len(body) / 2
	_, _ = w.Write(body[:half])
	w.(http.Flusher).Flush()
	t := time.NewTimer(s.cfg.SlowDelay)
	defer t.Stop()
	select {
	case <-t.C:
		_, _ = w.Write(body[half:])
	case <-r.Context().Done():
	case <-s.quit:
	}
}

func (s *Sources) count(m map[string]int, path string) {
	s.mu.Lock()
	m[path]++
	s.mu.Unlock()
}

// startSources starts the source server of Config.Sources, closed by Stop like a listener.
func (l *Lab) startSources() error {
	if l.cfg.Sources == 0 {
		return nil
	}
	s := NewSources(SourcesConfig{Candidates: l.candidates, N: l.cfg.Sources, Slow: l.cfg.SlowSources,
		SlowDelay: l.cfg.SlowSourceDelay, Dir: l.cfg.Dir, Log: l.log})
	if err := s.Start(l.ctx); err != nil {
		return err
	}
	if !l.track(sourcesCloser{s}) {
		return errors.New("stopped while starting")
	}
	l.sources = s
	return nil
}

// Sources returns the source server, or nil when Config.Sources is 0.
func (l *Lab) Sources() *Sources { return l.sources }
