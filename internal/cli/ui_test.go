package cli

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/internal/pool"
	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/internal/testkit"
	"github.com/proxyline/proxyline/proxy"
)

// TestUIListenRule: ui beyond loopback without credentials is refused (exit 2) before anything
// is opened; an auth file other users can read is refused; on loopback with --auth River UI's API
// answers 401 without the credentials and 200 with them; without credentials on loopback, a
// request for another host name (DNS rebinding) gets 403.
func TestUIListenRule(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "q.db")
	enqueueList(t, db, 2, 1)
	open := writeTestFile(t, dir, "auth-open", "alice:s3cret\n", 0o644)
	closed := writeTestFile(t, dir, "auth", "alice:s3cret\n", 0o600)
	for _, tt := range []struct {
		args []string
		says string
	}{
		{[]string{"--listen", ":0"}, "not a loopback address"},
		{[]string{"--listen", "0.0.0.0:0"}, "--auth-file FILE"},
		{[]string{"--listen", "[::]:0"}, "--insecure-no-auth"},
		{[]string{"--listen", "10.0.0.2:0"}, "not a loopback address"},
		{[]string{"--listen", "example.com:0"}, "not a loopback address"},
		{[]string{"--listen", "0.0.0.0:0", "--auth-file", open}, "mode 0644"},
		{[]string{"--listen", "0.0.0.0:0", "--auth", "alice"}, "user:pass"},
		{[]string{"--listen", "0.0.0.0:0", "--auth", "a:b", "--insecure-no-auth"}, "say which"},
	} {
		code, _, errOut := runMain(t, procOpts{}, append([]string{"ui", "--database", db}, tt.args...)...)
		if code != ExitUsage || !strings.Contains(errOut, tt.says) {
			t.Errorf("ui %v: exit %d, stderr %q; want %d saying %q", tt.args, code, errOut, ExitUsage, tt.says)
		}
		if strings.Contains(errOut, "serving") {
			t.Errorf("ui %v served:\n%s", tt.args, errOut)
		}
	}

	get := func(url, host string, auth bool) (int, string) {
		req, err := http.NewRequest("GET", url+"riverui/api/jobs?state=available&limit=10", nil)
		if err != nil {
			t.Fatal(err)
		}
		if host != "" {
			req.Host = host
		}
		if auth {
			req.SetBasicAuth("alice", "s3cret")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tt := range []struct {
		args  []string
		calls []struct {
			host string
			auth bool
			want int
		}
	}{
		{[]string{"--auth", "alice:s3cret"}, []struct {
			host string
			auth bool
			want int
		}{{"", false, 401}, {"", true, 200}}},
		{[]string{"--auth-file", closed}, []struct {
			host string
			auth bool
			want int
		}{{"", false, 401}, {"", true, 200}}},
		{nil, []struct {
			host string
			auth bool
			want int
		}{{"", false, 200}, {"rebound.example:8081", false, 403}}},
	} {
		ui := startMain(t, procOpts{}, append([]string{"ui", "--database", db, "--listen", "127.0.0.1:0"}, tt.args...)...)
		testkit.WaitFor(t, time.Minute, "ui to print its URL", func() bool { return strings.HasPrefix(ui.stdout.String(), "http://") })
		url := strings.TrimSpace(ui.stdout.String())
		for _, c := range tt.calls {
			code, body := get(url, c.host, c.auth)
			if code != c.want {
				t.Errorf("ui %v: GET host %q auth %v: %d, want %d", tt.args, c.host, c.auth, code, c.want)
			}
			if code == 200 && !strings.Contains(body, "127.0.0.") {
				t.Errorf("ui %v: jobs not served: %.300s", tt.args, body)
			}
			if code != 200 && strings.Contains(body, "127.0.0.") {
				t.Errorf("ui %v: a refused request got the jobs: %.300s", tt.args, body)
			}
		}
		ui.signal(t, syscall.SIGTERM)
		if code := ui.wait(t, time.Minute); code != 0 {
			t.Errorf("ui %v: exit %d after SIGTERM", tt.args, code)
		}
		if strings.Contains(ui.stderr.String(), "s3cret") {
			t.Errorf("ui %v logged the password:\n%s", tt.args, ui.stderr.String())
		}
	}
}

// TestUIConsole: ui serves the whole console (web UI, JSON API, metrics, River UI); a proxy's
// password appears only for an authenticated client that asks credentials=1, never in a page,
// never in the log.
func TestUIConsole(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "q.db")
	enqueueList(t, db, 2, 1)
	st, err := queue.Open(context.Background(), queue.Config{Database: db})
	if err != nil {
		t.Fatal(err)
	}
	p := proxy.Proxy{Scheme: proxy.HTTP, Host: "10.1.1.1", Port: 8080, User: "u", Password: "Zq9pw"}
	if err := pool.Record(context.Background(), st.DB(), pool.Source{JobID: 1, Attempt: 1, Worker: "w"},
		[]pool.Check{{Given: p, Result: check.Result{Proxy: p, Class: check.Alive, Total: 40 * time.Millisecond, CheckedAt: time.Now()}}}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	fetch := func(url string, auth bool) (int, string) {
		req, err := http.NewRequest("GET", url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if auth {
			req.SetBasicAuth("alice", "s3cret")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tt := range []struct {
		args  []string
		auth  bool
		creds int // status of /api/v1/proxies?credentials=1
	}{
		{[]string{"--auth", "alice:s3cret"}, true, 200},
		{nil, false, 403},
	} {
		ui := startMain(t, procOpts{}, append([]string{"ui", "--database", db, "--listen", "127.0.0.1:0"}, tt.args...)...)
		testkit.WaitFor(t, time.Minute, "ui to print its URL", func() bool { return strings.HasPrefix(ui.stdout.String(), "http://") })
		base := strings.TrimSpace(ui.stdout.String())
		for _, c := range []struct{ path, says string }{
			{"", "1 proxy on this page"},
			{"proxy/10.1.1.1:8080", "Latency of 10.1.1.1:8080"},
			{"queue", "2 unfinished jobs"},
			{"api/v1/proxies", `"proxy": "http://u:xxxxx@10.1.1.1:8080"`},
			{"api/v1/queue", `"available": 2`},
			{"metrics", `proxyline_pool_proxies{anonymity="",protocol="http"} 1`},
			{"riverui/api/jobs?state=available&limit=10", "127.0.0."},
		} {
			code, body := fetch(base+c.path, tt.auth)
			if code != 200 || !strings.Contains(body, c.says) || strings.Contains(body, "Zq9pw") {
				t.Errorf("ui %v: GET /%s: %d, want 200 with %q and no password: %.300s", tt.args, c.path, code, c.says, body)
			}
		}
		code, body := fetch(base+"api/v1/proxies?credentials=1", tt.auth)
		if code != tt.creds || (code == 200) != strings.Contains(body, "http://u:Zq9pw@10.1.1.1:8080") {
			t.Errorf("ui %v: credentials=1: %d %.300s", tt.args, code, body)
		}
		ui.signal(t, syscall.SIGTERM)
		if code := ui.wait(t, time.Minute); code != 0 {
			t.Errorf("ui %v: exit %d after SIGTERM", tt.args, code)
		}
		if strings.Contains(ui.stderr.String(), "Zq9pw") {
			t.Errorf("ui %v logged a proxy password:\n%s", tt.args, ui.stderr.String())
		}
	}
}
