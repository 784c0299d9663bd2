package web_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/console"
	"github.com/proxyline/proxyline/internal/lab"
	"github.com/proxyline/proxyline/internal/pool"
	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/internal/serve"
	"github.com/proxyline/proxyline/internal/testdb"
	"github.com/proxyline/proxyline/internal/testkit"
	"github.com/proxyline/proxyline/internal/web"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// layers are the supervision layers the test worker reports.
var layers = []string{"process_group", "pdeathsig", "subreaper", "cookie"}

// filled is a real pool: a worker checked a lab (with credentials on some proxies) into a
// SQLite queue, two sources named the proxies, and the worker stays registered.
type filled struct {
	st  *queue.Store
	lab *lab.Lab
	w   *queue.Worker
}

func fill(t *testing.T) filled {
	t.Helper()
	l := testdb.Lab(t, lab.Config{HTTP: 6, HTTPAuth: 2, SOCKS5: 3, Anonymous: 2, Refused: 2, Liar: 1})
	st := testdb.Open(t, queue.EngineSQLite)
	var seen []pool.Sighting
	for i, p := range l.Candidates() {
		seen = append(seen, pool.Sighting{Source: "lab-all", Proxy: p, Seen: time.Now()})
		if i%3 == 0 {
			seen = append(seen, pool.Sighting{Source: "lab-third", Proxy: p, Seen: time.Now()})
		}
	}
	if err := pool.RecordSightings(context.Background(), st.DB(), seen); err != nil {
		t.Fatal(err)
	}
	w := testdb.Work(t, st, l, 4, queue.WorkerConfig{Layers: layers, Concurrency: 2})
	// A second round of checks, so that every proxy has a history of two.
	testdb.Requeue(t, st, l, 4)
	return filled{st: st, lab: l, w: w}
}

// serveConsole serves the whole console behind the gate, on loopback, as `proxyline ui` does.
func serveConsole(t *testing.T, st *queue.Store) string {
	t.Helper()
	c, err := console.New(console.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	g, err := serve.Options{Listen: "127.0.0.1:0"}.Gate(nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := g.Listen()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(g.Wrap(c.Handler()))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		_ = c.Stop(context.Background())
	})
	return srv.URL
}

func get(t *testing.T, url string) (int, http.Header, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

var password = regexp.MustCompile(`:pw-[0-9]+@`)

// TestPages: each page answers with what a person would look for, under the CSP, without a
// password; bad input gets a page that says what is wrong.
func TestPages(t *testing.T) {
	t.Parallel()
	f := fill(t)
	base := serveConsole(t, f.st)
	first := f.lab.Candidates()[0].Addr()
	for _, tt := range []struct {
		path   string
		status int
		says   []string
	}{
		{"/", 200, []string{`<table class="sortable" id="pool">`, `<label for="f-protocol">Protocol</label>`, "13 proxies on this page", "socks5://127.0.0.", "lab:xxxxx@", "elite", "anonymous"}},
		{"/?class=all&protocol=http", 200, []string{"refused", "mismatch", `<option value="http" selected>`}},
		{"/?protocol=socks5&limit=50", 200, []string{"3 proxies on this page"}},
		{"/?country=JP", 200, []string{"No proxy matches these filters"}},
		{"/?protocol=gopher", 400, []string{"parameter protocol", `role="alert"`}},
		{"/?limit=0", 400, []string{"parameter limit"}},
		{"/proxy/" + first, 200, []string{"Proxy " + first, `<svg class="chart"`, "<polyline", `id="history"`, "(attempt 1)"}},
		{"/proxy/10.9.9.9:1", 404, []string{"No proxy 10.9.9.9:1 in the pool"}},
		{"/proxy/nonsense", 400, []string{"parameter addr"}},
		{"/sources", 200, []string{"lab-all", "lab-third", "<meter", "%"}},
		{"/queue", 200, []string{"completed", "available", "0 unfinished jobs", `id="queue-depth"`}},
		{"/workers", 200, []string{f.w.ID(), "1 of 1 registered worker alive", "pid_namespace not in force", "pdeathsig in force", "cgroup not in force"}},
		{"/nowhere", 404, []string{"There is no page /nowhere here"}},
	} {
		code, h, body := get(t, base+tt.path)
		if code != tt.status {
			t.Errorf("GET %s: %d, want %d\n%.2000s", tt.path, code, tt.status, body)
			continue
		}
		if h.Get("Content-Security-Policy") != web.ContentSecurityPolicy || !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
			t.Errorf("GET %s: headers %v", tt.path, h)
		}
		for _, s := range tt.says {
			if !strings.Contains(body, s) {
				t.Errorf("GET %s: no %q in\n%.3000s", tt.path, s, body)
			}
		}
		if password.MatchString(body) {
			t.Errorf("GET %s shows a password", tt.path)
		}
		if strings.Contains(body, "<script>") || strings.Contains(body, " style=") || strings.Contains(body, "http://cdn") || strings.Contains(body, "https://") {
			t.Errorf("GET %s: inline script, inline style or an external asset", tt.path)
		}
	}
	code, h, body := get(t, base+"/static/app.js")
	if code != 200 || !strings.Contains(h.Get("Content-Type"), "javascript") || !strings.Contains(body, "makeSortable") {
		t.Errorf("app.js: %d %v", code, h)
	}
	// The rest of the console on the same server.
	for _, tt := range []struct{ path, says string }{
		{"/api/v1/queue", `"completed": 8`},
		{"/metrics", `proxyline_queue_jobs{state="completed"} 8`},
		{"/riverui/", "<html"},
	} {
		code, _, body := get(t, base+tt.path)
		if code != 200 || !strings.Contains(body, tt.says) {
			t.Errorf("GET %s: %d, no %q in %.500s", tt.path, code, tt.says, body)
		}
	}
}

// TestPoolPaging: the next-page link continues the listing without repeating a proxy.
func TestPoolPaging(t *testing.T) {
	t.Parallel()
	st := testdb.Open(t, queue.EngineSQLite)
	testdb.FillSynthetic(t, st, 120)
	base := serveConsole(t, st)
	link := regexp.MustCompile(`href="(/\?[^"]+)" rel="next"`)
	row := regexp.MustCompile(`<a href="/proxy/[^"]+">([^<]+)</a>`)
	seen := map[string]bool{}
	path := "/?limit=50"
	for pages := 0; path != ""; pages++ {
		if pages > 5 {
			t.Fatal("more pages than rows")
		}
		code, _, body := get(t, base+path)
		if code != 200 {
			t.Fatalf("GET %s: %d", path, code)
		}
		for _, m := range row.FindAllStringSubmatch(body, -1) {
			if seen[m[1]] {
				t.Errorf("%s shown twice", m[1])
			}
			seen[m[1]] = true
		}
		path = ""
		if m := link.FindStringSubmatch(body); m != nil {
			path = strings.ReplaceAll(m[1], "&amp;", "&")
		}
	}
	if len(seen) != 120 {
		t.Errorf("%d proxies over the pages, want 120", len(seen))
	}
}
