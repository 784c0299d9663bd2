package fetch

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

func server(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

func fetcher(t *testing.T, cfg Config) *Fetcher {
	t.Helper()
	cfg.Backoff = cmpOr(cfg.Backoff, time.Millisecond)
	f := New(cfg)
	t.Cleanup(f.Close)
	return f
}

func cmpOr(a, b time.Duration) time.Duration {
	if a != 0 {
		return a
	}
	return b
}

func TestRetries(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	s := server(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("User-Agent") != DefaultUserAgent || r.Header.Get("X-Key") != "k" {
			w.WriteHeader(400)
			return
		}
		if u, p, _ := r.BasicAuth(); u != "bob" || p != "pw" {
			w.WriteHeader(401)
			return
		}
		switch n.Add(1) {
		case 1:
			w.WriteHeader(503)
		case 2:
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(429)
		default:
			_, _ = w.Write([]byte("1.2.3.4:80\n"))
		}
	})
	resp, err := fetcher(t, Config{}).Get(context.Background(), Request{URL: s.URL, Header: map[string]string{"X-Key": "k"}, User: "bob", Password: "pw"})
	if err != nil || resp.Attempts != 3 || string(resp.Body) != "1.2.3.4:80\n" {
		t.Fatalf("Get = %+v, %v; want the body after 3 attempts", resp, err)
	}
	n.Store(0)
	if _, err := fetcher(t, Config{Retries: -1}).Get(context.Background(), Request{URL: s.URL, Header: map[string]string{"X-Key": "k"}, User: "bob", Password: "pw"}); err == nil {
		t.Error("Retries -1 must not retry")
	}
}

func TestNoRetryOn404(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	s := server(t, func(w http.ResponseWriter, r *http.Request) { n.Add(1); w.WriteHeader(404) })
	_, err := fetcher(t, Config{}).Get(context.Background(), Request{URL: s.URL})
	var se *StatusError
	if !errors.As(err, &se) || se.Code != 404 || n.Load() != 1 {
		t.Fatalf("err %v after %d requests; want HTTP 404 after 1", err, n.Load())
	}
}

func TestCaps(t *testing.T) {
	t.Parallel()
	var bomb bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&bomb, gzip.BestCompression)
	_, _ = zw.Write(bytes.Repeat([]byte("\n"), 4<<20))
	_ = zw.Close()
	s := server(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big":
			_, _ = w.Write(bytes.Repeat([]byte("1.2.3.4:80\n"), 100_000))
		case "/bomb":
			w.Header().Set("Content-Encoding", "gzip")
			_, _ = w.Write(bomb.Bytes())
		case "/a":
			http.Redirect(w, r, "/b", http.StatusFound)
		case "/b":
			http.Redirect(w, r, "/a", http.StatusFound)
		default: // /r/N redirects N more times
			http.Redirect(w, r, "/r"+r.URL.Path[2:]+"x", http.StatusFound)
		}
	})
	f := fetcher(t, Config{MaxSize: 1 << 20})
	for _, c := range []struct {
		path string
		want error
	}{{"/big", ErrTooLarge}, {"/bomb", ErrTooLarge}, {"/a", ErrLoop}, {"/r/", ErrRedirects}} {
		_, err := f.Get(context.Background(), Request{URL: s.URL + c.path})
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.path, err, c.want)
		}
	}
	if bomb.Len() > 1<<20 {
		t.Fatalf("the bomb is %d bytes compressed: it must be under the cap to test the decompressed cap", bomb.Len())
	}
}

func TestDeadline(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	s := server(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("1.2.3.4:80\n"))
		w.(http.Flusher).Flush()
		select { // a slow drip that never ends by itself
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := fetcher(t, Config{}).Get(ctx, Request{URL: s.URL})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("slow drip: %v, want the deadline", err)
	}
}

func TestConditionalGet(t *testing.T) {
	t.Parallel()
	var full, notModified atomic.Int32
	s := server(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-None-Match") == `"v1"` {
			notModified.Add(1)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		full.Add(1)
		w.Header().Set("ETag", `"v1"`)
		_, _ = w.Write([]byte("1.2.3.4:80\n"))
	})
	dir := filepath.Join(t.TempDir(), "cache")
	f := fetcher(t, Config{Cache: &Cache{Dir: dir}})
	req := Request{URL: s.URL, User: "u", Password: "secret-pw"}
	resp, err := f.Get(context.Background(), req)
	if err != nil || resp.NotModified || resp.ETag != `"v1"` {
		t.Fatalf("first Get = %+v, %v", resp, err)
	}
	if err := f.cfg.Cache.Store(req, Entry{ETag: resp.ETag, Candidates: []string{"1.2.3.4:80"}}); err != nil {
		t.Fatal(err)
	}
	resp, err = f.Get(context.Background(), req)
	if err != nil || !resp.NotModified || len(resp.Cached.Candidates) != 1 || full.Load() != 1 || notModified.Load() != 1 {
		t.Fatalf("second Get = %+v, %v (full %d, 304 %d)", resp, err, full.Load(), notModified.Load())
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, name := range files {
		st, _ := os.Stat(name)
		b, _ := os.ReadFile(name)
		if st.Mode().Perm() != 0o600 || strings.Contains(string(b), "secret-pw") {
			t.Errorf("cache file %s: mode %v, content %s", name, st.Mode(), b)
		}
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Errorf("cache dir mode %v", st.Mode())
	}
}

func TestMask(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"http://u:p@host:1/x@y": "http://***@host:1/x@y",
		"socks5://a@b:1":        "socks5://***@b:1",
		"http://host/p?q=a@b":   "http://host/p?q=a@b",
		"file.txt":              "file.txt",
	} {
		if got := Mask(in); got != want {
			t.Errorf("Mask(%q) = %q, want %q", in, got, want)
		}
	}
	_, err := fetcher(t, Config{}).Get(context.Background(), Request{URL: "http://user:hunter2@127.0.0.1:1/"})
	if err == nil || strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "user") {
		t.Errorf("error shows credentials: %v", err)
	}
}
