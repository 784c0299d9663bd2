package lab

// The backend is an origin server for the rotator's tests and benchmarks: large bodies streamed
// from a generator (never held in memory), an echo of what arrived, slow streams, and a gate that
// holds a response's last byte until the test releases it, so that a test can tell streaming from
// buffering without measuring time.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// MaxBackendBytes bounds /bytes/N.
const MaxBackendBytes = 1 << 40

// backendChunk is how much the backend writes at a time.
const backendChunk = 32 << 10

// PatternByte is byte i of every body the backend generates: clients verify what they received
// without the backend keeping it.
func PatternByte(i int64) byte { return byte(i % 251) }

// Echo is what the backend's /echo answers: the request as it arrived.
type Echo struct {
	Method     string      `json:"method"`
	URI        string      `json:"uri"`
	Host       string      `json:"host"`
	RemoteIP   string      `json:"remote_ip"`
	Headers    http.Header `json:"headers"`
	BodyBytes  int64       `json:"body_bytes"`
	BodySHA256 string      `json:"body_sha256"`
}

// BackendStats counts the backend's requests.
type BackendStats struct {
	Requests int64 // requests received
	Canceled int64 // requests whose client went away before the response was complete
	Done     int64 // requests answered completely
}

// backend is the state of the lab's backend server.
type backend struct {
	url      string
	mu       sync.Mutex               // guards gates
	gates    map[string]chan struct{} // guarded by mu: closed by Release
	requests atomic.Int64
	canceled atomic.Int64
	done     atomic.Int64
}

// BackendURL returns the backend's base URL (http://127.0.0.2:PORT/), or "" without
// Config.Backend. Its paths:
//
//   - GET /bytes/N: N bytes of PatternByte, streamed in 32 KiB writes with a Content-Length.
//     With ?hold=NAME the last byte is written only after Release(NAME) (or the client leaves).
//   - ANY /echo: the request as received, as an Echo (the body is read, counted and hashed).
//   - GET /slow?n=N&d=DURATION: N bytes (default 1000) in ten flushed pieces spread over d
//     (default 1s).
func (l *Lab) BackendURL() string {
	if l.backend == nil {
		return ""
	}
	return l.backend.url
}

// Release lets the responses held with ?hold=name finish; later ones with that name are not held.
func (l *Lab) Release(name string) {
	if l.backend == nil {
		return
	}
	close(l.backend.gate(name))
}

// BackendStats returns the backend's counters.
func (l *Lab) BackendStats() BackendStats {
	if l.backend == nil {
		return BackendStats{}
	}
	b := l.backend
	return BackendStats{Requests: b.requests.Load(), Canceled: b.canceled.Load(), Done: b.done.Load()}
}

func (b *backend) gate(name string) chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	g, ok := b.gates[name]
	if !ok {
		g = make(chan struct{})
		b.gates[name] = g
	}
	return g
}

// startBackend serves the backend on judgeIP (127.0.0.2), beside the judge.
func (l *Lab) startBackend() error {
	ln, err := net.Listen("tcp4", netip.AddrPortFrom(judgeIP(), 0).String())
	if err != nil {
		return fmt.Errorf("backend: %w", err)
	}
	b := &backend{url: "http://" + ln.Addr().String() + "/", gates: map[string]chan struct{}{}}
	srv := &http.Server{
		Handler:           b.handler(l),
		ReadHeaderTimeout: headTimeout,
		IdleTimeout:       time.Minute,
		ErrorLog:          slog.NewLogLogger(l.log.Handler(), slog.LevelDebug),
	}
	if !l.track(srv) {
		_ = ln.Close()
		return errors.New("stopped while starting")
	}
	l.backend = b
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			l.log.Error("lab backend stopped", "url", b.url, "err", err)
		}
	}()
	return nil
}

func (b *backend) handler(l *Lab) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /bytes/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.ParseInt(r.PathValue("n"), 10, 64)
		if err != nil || n < 0 || n > MaxBackendBytes {
			http.Error(w, "want /bytes/N with 0 <= N <= 2^40", http.StatusBadRequest)
			return
		}
		var hold <-chan struct{}
		if name := r.URL.Query().Get("hold"); name != "" {
			hold = b.gate(name)
		}
		b.serveBytes(w, r, n, hold, 0)
	})
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		n, err := strconv.ParseInt(cmpOr(q.Get("n"), "1000"), 10, 64)
		d, derr := time.ParseDuration(cmpOr(q.Get("d"), "1s"))
		if err != nil || derr != nil || n < 0 || n > MaxBackendBytes || d < 0 || d > time.Hour {
			http.Error(w, "want /slow?n=BYTES&d=DURATION", http.StatusBadRequest)
			return
		}
		b.serveBytes(w, r, n, nil, d)
	})
	mux.HandleFunc("/echo", b.serveEcho)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.requests.Add(1)
		mux.ServeHTTP(w, r)
	})
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// serveBytes writes n pattern bytes. With hold, the last byte waits for the gate; with spread > 0
// the body goes out in ten flushed pieces spread over that time.
func (b *backend) serveBytes(w http.ResponseWriter, r *http.Request, n int64, hold <-chan struct{}, spread time.Duration) {
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	piece := int64(backendChunk)
	var tick *time.Ticker
	if spread > 0 {
		piece = max(n/10, 1)
		tick = time.NewTicker(spread / 10)
		defer tick.Stop()
	}
	buf := make([]byte, backendChunk)
	var off int64
	for off < n {
		end := min(off+piece, n)
		if hold != nil && end == n {
			end = n - 1
			if off == end {
				_ = rc.Flush()
				if !waitOr(r, hold) {
					b.canceled.Add(1)
					return
				}
				end = n
			}
		}
		if err := writePattern(w, buf, off, end); err != nil {
			b.canceled.Add(1)
			return
		}
		off = end
		if tick != nil && off < n {
			_ = rc.Flush()
			if !waitOr(r, tick.C) {
				b.canceled.Add(1)
				return
			}
		}
	}
	b.done.Add(1)
}

// writePattern writes pattern bytes [from, to) through buf.
func writePattern(w io.Writer, buf []byte, from, to int64) error {
	for from < to {
		k := min(int64(len(buf)), to-from)
		for i := range k {
			buf[i] = PatternByte(from + i)
		}
		if _, err := w.Write(buf[:k]); err != nil {
			return err
		}
		from += k
	}
	return nil
}

// waitOr waits for c or the end of the request; it reports whether c came first.
func waitOr[T any](r *http.Request, c <-chan T) bool {
	select {
	case <-c:
		return true
	case <-r.Context().Done():
		return false
	}
}

func (b *backend) serveEcho(w http.ResponseWriter, r *http.Request) {
	h := sha256.New()
	n, err := io.Copy(h, r.Body)
	if err != nil {
		b.canceled.Add(1)
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	ip, _, _ := strings.Cut(r.RemoteAddr, ":")
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		ip = ap.Addr().Unmap().String()
	}
	e := Echo{Method: r.Method, URI: r.RequestURI, Host: r.Host, RemoteIP: ip, Headers: r.Header,
		BodyBytes: n, BodySHA256: hex.EncodeToString(h.Sum(nil))}
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(e); err == nil {
		b.done.Add(1)
	}
}
