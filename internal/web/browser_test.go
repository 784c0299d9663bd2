package web_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromium finds a headless-capable Chromium: Debian's chromium package (CI installs it, see
// .ci/run). Without one the test is skipped, unless CI is set: then it fails.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("CI is set but no chromium is installed (apt-get install -y chromium): the browser test cannot run")
	}
	t.Skip("no chromium installed (apt-get install -y chromium): skipping the browser test of the web UI")
	return ""
}

// artifacts returns the directory that keeps the screenshots: $PROXYLINE_TEST_ARTIFACTS/web-ui
// (CI sets it, see .ci/run), else a temporary directory removed after the test.
func artifacts(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if base := os.Getenv("PROXYLINE_TEST_ARTIFACTS"); base != "" {
		dir = filepath.Join(base, "web-ui")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

// browser starts a headless Chromium for t, which only ever talks to loopback: no proxy, no
// name resolution (the pages are addressed by IP), no background networking, a fresh profile.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := chromium(t)
	parent, cancelAll := context.WithTimeout(context.Background(), 5*time.Minute)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // root in CI; the pages are ours
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("no-proxy-server", true),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(parent, opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
		defer ccancel()
		_ = chromedp.Cancel(cctx) // closes the browser and waits for it
		cancel()
		cancelAlloc()
		cancelAll()
	})
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start %s: %v", path, err)
	}
	return ctx
}

// console collects what the pages write to the console (errors, CSP violations).
type consoleLog struct {
	mu   sync.Mutex
	msgs []string // guarded by mu
	done chan struct{}
}

func watchConsole(ctx context.Context) *consoleLog {
	c := &consoleLog{done: make(chan struct{})}
	msgs := chromedp.Console(ctx)
	go func() {
		defer close(c.done)
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.IsException() || m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleWarning {
				c.mu.Lock()
				c.msgs = append(c.msgs, m.URL+": "+m.String())
				c.mu.Unlock()
			}
		}
	}()
	return c
}

func (c *consoleLog) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.msgs
	c.msgs = nil
	return out
}

// TestBrowser loads every page of the console in headless Chromium against a pool a real worker
// filled from the lab, checks what a person sees (rows, the chart, sources, queue states,
// supervision layers, River UI), sorts and filters the pool as a person would, and keeps a
// screenshot of each page.
func TestBrowser(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
	f := fill(t)
	base := serveConsole(t, f.st)
	shots := artifacts(t)
	logs := watchConsole(ctx)
	first := f.lab.Candidates()[0].Addr()

	page := func(name, path, ready string, wants ...string) string {
		t.Helper()
		resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(base+path))
		if err != nil {
			t.Fatalf("%s: open %s: %v", name, path, err)
		}
		if resp.Status != 200 {
			t.Errorf("%s: %s answered %d", name, path, resp.Status)
		}
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](ready, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
			t.Fatalf("%s: %s never became ready (%s): %v", name, path, ready, err)
		}
		text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range wants {
			if !strings.Contains(text, w) {
				t.Errorf("%s: a person would not see %q on %s:\n%.1500s", name, w, path, text)
			}
		}
		shot(t, ctx, filepath.Join(shots, name+".png"))
		return text
	}
	sortable := `document.querySelector("table.sortable") && document.querySelector("table.sortable").dataset.sortable === "ready"`

	page("pool", "/", sortable, "Pool", "13 proxies on this page", "Latency (ms)", "elite", "anonymous", "socks5", "lab:xxxxx@")
	rows := evaluate[int](t, ctx, `document.querySelectorAll("#pool tbody tr").length`)
	if rows != 13 {
		t.Errorf("pool table: %d rows, want 13", rows)
	}
	// Sorting: the latency header twice (descending), then the protocol header (ascending).
	latencies := `Array.from(document.querySelectorAll("#pool tbody tr")).map(r => parseFloat(r.cells[4].dataset.sort))`
	click(t, ctx, `#pool thead th:nth-child(5) button`)
	click(t, ctx, `#pool thead th:nth-child(5) button`)
	if got := evaluate[[]float64](t, ctx, latencies); !slices.IsSortedFunc(got, func(a, b float64) int { return int(b - a) }) || len(got) != 13 {
		t.Errorf("after two clicks on Latency: %v, want descending", got)
	}
	if s := evaluate[string](t, ctx, `document.querySelector("#pool thead th:nth-child(5)").getAttribute("aria-sort")`); s != "descending" {
		t.Errorf("aria-sort %q after two clicks", s)
	}
	click(t, ctx, `#pool thead th:nth-child(2) button`)
	protocols := evaluate[[]string](t, ctx, `Array.from(document.querySelectorAll("#pool tbody tr")).map(r => r.cells[1].textContent)`)
	if !slices.IsSorted(protocols) {
		t.Errorf("after a click on Protocol: %v, want sorted", protocols)
	}
	shot(t, ctx, filepath.Join(shots, "pool-sorted.png"))
	// Filtering: choose socks5 and press Filter; the server answers with the socks5 proxies.
	if _, err := chromedp.RunResponse(ctx, chromedp.SetValue(chromedp.ID("f-protocol"), "socks5"),
		chromedp.Click(chromedp.CSS(`form.filters button[type=submit]`))); err != nil {
		t.Fatal(err)
	}
	if rows := evaluate[int](t, ctx, `document.querySelectorAll("#pool tbody tr").length`); rows != 3 {
		t.Errorf("filtered by socks5: %d rows, want 3", rows)
	}
	if u := evaluate[string](t, ctx, `location.search`); !strings.Contains(u, "protocol=socks5") {
		t.Errorf("filter URL %q", u)
	}
	shot(t, ctx, filepath.Join(shots, "pool-socks5.png"))

	page("proxy", "/proxy/"+first, sortable, "Proxy "+first, "History, newest first", "alive")
	if n := evaluate[int](t, ctx, `document.querySelectorAll("#latency-chart svg.chart circle.point").length`); n < 2 {
		t.Errorf("latency chart: %d points, want one per live check (2)", n)
	}
	if n := evaluate[int](t, ctx, `document.querySelectorAll("#history tbody tr").length`); n != 2 {
		t.Errorf("history: %d rows, want 2", n)
	}
	page("sources", "/sources", sortable, "lab-all", "lab-third", "Yield")
	page("queue", "/queue", `!!document.querySelector("#queue-depth")`, "completed", "available", "running", "discarded", "0 unfinished jobs")
	if n := evaluate[string](t, ctx, `Array.from(document.querySelectorAll("#queue-depth tbody tr")).find(r => r.cells[0].textContent === "completed").cells[1].textContent`); n != "8" {
		t.Errorf("completed jobs shown: %q, want 8", n)
	}
	page("workers", "/workers", sortable, f.w.ID(), "1 of 1 registered worker alive", "pid_namespace", "cookie")
	in := evaluate[[]string](t, ctx, `Array.from(document.querySelectorAll("#workers tbody td.layer span.on")).map(s => s.getAttribute("aria-label"))`)
	if !slices.Equal(in, []string{"process_group in force", "pdeathsig in force", "subreaper in force", "cookie in force"}) {
		t.Errorf("layers in force shown: %v", in)
	}
	if msgs := logs.take(); len(msgs) > 0 {
		t.Errorf("our pages wrote errors or warnings to the console (CSP violations show here):\n%s", strings.Join(msgs, "\n"))
	}
	page("riverui", "/riverui/", `document.body.innerText.includes("Job State")`, "Completed", "Discarded")
}

func evaluate[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

func click(t *testing.T, ctx context.Context, css string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(css))); err != nil {
		t.Fatalf("click %s: %v", css, err)
	}
}

// shot writes a full-page PNG screenshot.
func shot(t *testing.T, ctx context.Context, path string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", path, err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
}
