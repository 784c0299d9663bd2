package console_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/proxyline/proxyline/internal/console"
	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/internal/testdb"
	"github.com/proxyline/proxyline/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

func status(h http.Handler, method, path string) (int, string) {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(method, "http://127.0.0.1"+path, nil))
	return w.Code, w.Body.String()
}

// TestRoutesAndLifecycle: one handler serves the UI, the API, the metrics and River UI; River UI
// answers only between Start and Stop.
func TestRoutesAndLifecycle(t *testing.T) {
	t.Parallel()
	st := testdb.Open(t, queue.EngineSQLite)
	testdb.FillSynthetic(t, st, 3)
	c, err := console.New(console.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	h := c.Handler()
	for _, tt := range []struct {
		method, path string
		code         int
		says         string
	}{
		{"GET", "/", 200, "3 proxies on this page"},
		{"GET", "/static/style.css", 200, "--accent"},
		{"GET", "/api/v1/proxies", 200, `"count": 3`},
		{"GET", "/metrics", 200, "proxyline_pool_proxies"},
		{"POST", "/metrics", 404, ""},
		{"GET", "/riverui/", 503, "not running"},
		{"GET", "/riverui", 301, ""},
	} {
		if code, body := status(h, tt.method, tt.path); code != tt.code || !strings.Contains(body, tt.says) {
			t.Errorf("%s %s before Start: %d %.200q, want %d with %q", tt.method, tt.path, code, body, tt.code, tt.says)
		}
	}
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err == nil {
		t.Error("a second Start succeeded")
	}
	if code, body := status(h, "GET", "/riverui/"); code != 200 || !strings.Contains(body, "<html") {
		t.Errorf("River UI after Start: %d %.200q", code, body)
	}
	if code, _ := status(h, "GET", "/riverui/api/jobs?state=available&limit=5"); code != 200 {
		t.Errorf("River UI's API after Start: %d", code)
	}
	for range 2 {
		if err := c.Stop(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if code, _ := status(h, "GET", "/riverui/"); code != 503 {
		t.Errorf("River UI after Stop: %d", code)
	}
	if err := c.Start(ctx); err == nil {
		t.Error("Start after Stop succeeded")
	}

	off, err := console.New(console.Config{Store: st, NoRiverUI: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := off.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer off.Stop(ctx)
	if code, _ := status(off.Handler(), "GET", "/riverui/"); code != 404 {
		t.Errorf("River UI when left out: %d", code)
	}
	if _, err := console.New(console.Config{}); err == nil {
		t.Error("a console without a store")
	}
}
