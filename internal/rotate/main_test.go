package rotate

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/lab"
	"github.com/proxyline/proxyline/internal/proxydial"
	"github.com/proxyline/proxyline/internal/serve"
	"github.com/proxyline/proxyline/internal/testkit"
	"github.com/proxyline/proxyline/proxy"
)

// TestMain checks, after every test, that no goroutine, file descriptor or process is left.
func TestMain(m *testing.M) { testkit.Main(m) }

// startLab starts a lab with a backend; it stops with the test.
func startLab(t *testing.T, cfg lab.Config) *lab.Lab {
	t.Helper()
	cfg.Backend = true
	l, err := lab.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Stop(context.Background()); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return l
}

// writeList writes ps as a list file (through a rename, as a careful writer would).
func writeList(t *testing.T, path string, ps []proxy.Proxy) {
	t.Helper()
	var b strings.Builder
	for _, p := range ps {
		b.WriteString(p.String() + "\n")
	}
	writeFile(t, path, b.String())
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// startServer starts a rotator on 127.0.0.1:0 serving the list ps (written to a file), with cfg's
// other fields; it stops with the test.
func startServer(t *testing.T, cfg Config, ps []proxy.Proxy) (*Server, *testkit.Buffer) {
	t.Helper()
	if cfg.From == "" {
		cfg.From = filepath.Join(t.TempDir(), "list.txt")
		writeList(t, cfg.From, ps)
	}
	if cfg.Listen.Listen == "" {
		cfg.Listen.Listen = "127.0.0.1:0"
	}
	logs := &testkit.Buffer{}
	cfg.Log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return runServer(t, cfg), logs
}

// runServer builds and starts a rotator for cfg; it stops with the test or benchmark.
func runServer(t testing.TB, cfg Config) *Server {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return s
}

// client returns an HTTP client that goes through the rotator, with credentials if user is set.
func client(s *Server, user, pass string) *http.Client {
	u := &url.URL{Scheme: "http", Host: s.Addr().String()}
	if user != "" {
		u.User = url.UserPassword(user, pass)
	}
	return &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(u), DisableCompression: true,
		DisableKeepAlives: false, MaxIdleConnsPerHost: 64}, Timeout: 60 * time.Second}
}

// echo fetches /echo through c and returns what the backend saw.
func echo(t *testing.T, c *http.Client, l *lab.Lab) lab.Echo {
	t.Helper()
	resp, err := c.Get(l.BackendURL() + "echo")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("echo: %s %s", resp.Status, b)
	}
	var e lab.Echo
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatal(err)
	}
	return e
}

// exitIPs maps each live lab candidate's exit IP to the candidate.
func exitIPs(l *lab.Lab) map[string]proxy.Proxy {
	m := map[string]proxy.Proxy{}
	for _, tr := range l.Truth() {
		if tr.Alive {
			m[tr.ExitIP] = tr.Proxy
		}
	}
	return m
}

// backendAddr returns the backend's host:port.
func backendAddr(t *testing.T, l *lab.Lab) string {
	t.Helper()
	u, err := url.Parse(l.BackendURL())
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// viaTunnel opens a tunnel through the rotator with scheme (http: CONNECT, socks5) and fetches
// path from the backend over it; it returns the echo or the error.
func viaTunnel(t *testing.T, s *Server, scheme proxy.Scheme, user, pass string, l *lab.Lab) (lab.Echo, error) {
	t.Helper()
	addr := s.Addr().(*net.TCPAddr)
	p := proxy.Proxy{Scheme: scheme, Host: "127.0.0.1", Port: uint16(addr.Port), User: user, Password: pass}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := proxydial.Dial(ctx, p, "tcp", backendAddr(t, l), nil)
	if err != nil {
		return lab.Echo{}, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(c, "GET /echo HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", backendAddr(t, l))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return lab.Echo{}, err
	}
	defer resp.Body.Close()
	var e lab.Echo
	err = json.NewDecoder(resp.Body).Decode(&e)
	return e, err
}

func serveOptions(listen string) serve.Options { return serve.Options{Listen: listen} }
