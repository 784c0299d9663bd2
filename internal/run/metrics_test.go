package run

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/internal/lab"
	"github.com/proxyline/proxyline/internal/pool"
	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/internal/testdb"
	"github.com/proxyline/proxyline/internal/testkit"
	"github.com/proxyline/proxyline/proxy"
)

// TestRotatorMetrics: requests through run's rotator are counted per upstream in run's /metrics
// (parsed with expfmt, as Prometheus does). The pool holds a live lab proxy that wants
// credentials (which no label may show) and an address the pool thinks alive but where nothing
// listens: its attempts are counted as requests and errors, and each request then succeeds
// through the live one, whose requests (forwarded and tunnelled) are all counted without error.
func TestRotatorMetrics(t *testing.T) {
	l := testdb.Lab(t, lab.Config{HTTPAuth: 1, Refused: 1})
	database := filepath.Join(t.TempDir(), "run.db")
	var live, dead proxy.Proxy
	var cs []pool.Check
	for _, tr := range l.Truth() {
		if tr.Alive {
			live = tr.Proxy
		} else {
			dead = tr.Proxy
		}
		cs = append(cs, pool.Check{Given: tr.Proxy, Result: check.Result{Proxy: tr.Proxy, Class: check.Alive,
			CheckedAt: time.Now(), Total: time.Millisecond}})
	}
	if live.Password == "" || dead.Port == 0 {
		t.Fatalf("lab truth %+v: want a live proxy with credentials and a refused one", l.Truth())
	}
	st := testdb.OpenAt(t, database, queue.Migrate)
	if err := pool.Record(context.Background(), st.DB(), pool.Source{JobID: 1, Attempt: 1}, cs); err != nil {
		t.Fatal(err)
	}

	cfg := Default()
	cfg.Database.URL = database
	cfg.Rotate.Listen, cfg.Console.Listen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Rotate.Policy = "round-robin"
	svc, err := New(Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := svc.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	}()

	// Four forwarded requests and one tunnel: round-robin sends some first to the dead address,
	// which fails and is benched; the request is retried on the live proxy.
	rurl, _ := url.Parse("http://" + svc.RotatorAddr())
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(rurl)}, Timeout: time.Minute}
	defer client.CloseIdleConnections()
	const forwarded = 4
	for i := range forwarded {
		resp, err := client.Get(l.JudgeURL())
		if err != nil {
			t.Fatalf("request %d through the rotator: %v", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d through the rotator: %s", i, resp.Status)
		}
	}
	connectThrough(t, svc.RotatorAddr(), strings.TrimPrefix(strings.TrimSuffix(l.JudgeURL(), "/"), "http://"))

	fams := scrapeMetrics(t, svc.ConsoleURL()+"metrics")
	liveLabel := "http://" + live.Addr()
	deadLabel := string(dead.Scheme) + "://" + dead.Addr()
	if dead.Scheme == proxy.Unknown {
		deadLabel = dead.Addr()
	}
	got := func(name, upstream string) float64 {
		f := fams[name]
		if f == nil {
			return -1
		}
		for _, m := range f.Metric {
			for _, lp := range m.Label {
				if strings.Contains(lp.GetValue(), live.Password) || strings.Contains(lp.GetValue(), "@") {
					t.Errorf("%s has credentials in a label: %q", name, lp.GetValue())
				}
			}
			if len(m.Label) == 1 && m.Label[0].GetValue() == upstream {
				if h := m.GetHistogram(); h != nil {
					return float64(h.GetSampleCount())
				}
				return m.GetCounter().GetValue()
			}
		}
		return -1
	}
	if n := got("proxyline_rotator_requests_total", liveLabel); n != forwarded+1 {
		t.Errorf("proxyline_rotator_requests_total{upstream=%q} = %v, want %d (every request and the tunnel)", liveLabel, n, forwarded+1)
	}
	if n := got("proxyline_rotator_errors_total", liveLabel); n != 0 {
		t.Errorf("proxyline_rotator_errors_total{upstream=%q} = %v, want 0", liveLabel, n)
	}
	if n := got("proxyline_rotator_request_duration_seconds", liveLabel); n != forwarded+1 {
		t.Errorf("proxyline_rotator_request_duration_seconds{upstream=%q} counts %v, want %d", liveLabel, n, forwarded+1)
	}
	failed := got("proxyline_rotator_requests_total", deadLabel)
	if failed < 1 {
		t.Errorf("proxyline_rotator_requests_total{upstream=%q} = %v, want at least 1 (round-robin tried it)", deadLabel, failed)
	}
	if n := got("proxyline_rotator_errors_total", deadLabel); n != failed {
		t.Errorf("proxyline_rotator_errors_total{upstream=%q} = %v, want %v (every attempt through it failed)", deadLabel, n, failed)
	}
}

// connectThrough opens a CONNECT tunnel to target through the rotator at addr and closes it.
func connectThrough(t *testing.T, addr, target string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatalf("CONNECT %s through the rotator: %v", target, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("CONNECT %s through the rotator: %s", target, resp.Status)
	}
}

// scrapeMetrics fetches and parses a /metrics page.
func scrapeMetrics(t *testing.T, u string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse %s: %v", u, err)
	}
	return fams
}

// TestRunCountsSweptLeftovers: a dead run's leftover (a task directory its supervisor made in
// TMPDIR) is removed by the start-up sweep of the next run with worker processes, and counted in
// its /metrics (proxyline_orphans_swept_total).
func TestRunCountsSweptLeftovers(t *testing.T) {
	tmp := t.TempDir()
	helper := exec.Command(os.Args[0])
	helper.Env = append(os.Environ(), leftoverEnv+"="+tmp)
	if out, err := helper.CombinedOutput(); err != nil {
		t.Fatalf("make a dead run's leftover: %v\n%s", err, out)
	}
	left, err := os.ReadDir(tmp)
	if err != nil || len(left) != 1 {
		t.Fatalf("leftovers %v (%v): want the helper's task directory", left, err)
	}

	database := filepath.Join(t.TempDir(), "run.db")
	cfg := writeConfig(t, fmt.Sprintf("[database]\nurl = %q\n\n", database)+loopbackListen)
	p := start(t, []string{"TMPDIR=" + tmp}, "run", "--config", cfg, "--workers", "1")
	consoleURL := p.line(t, `^console: (\S+)$`, 2*time.Minute)[1]
	if _, err := os.Stat(filepath.Join(tmp, left[0].Name())); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the dead run's task directory %s is still there (%v)", left[0].Name(), err)
	}
	f := scrapeMetrics(t, consoleURL+"metrics")["proxyline_orphans_swept_total"]
	if f == nil || f.Metric[0].GetCounter().GetValue() < 1 {
		t.Errorf("proxyline_orphans_swept_total %v: want at least 1 (the dead run's task directory)", f)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.exit(t, 2*time.Minute); code != 0 {
		t.Fatalf("exit %d after SIGTERM, want 0", code)
	}
}

// TestStopOrder: the shutdown order of Service.Stop. With a request in flight through the rotator
// (a slow lab proxy answers after 8 s), Stop first closes the rotator's listener (a new client is
// refused) while the console still serves /metrics; the request in flight is drained, not cut
// (200); Stop returns nil within the deadline, and then the console is gone too.
func TestStopOrder(t *testing.T) {
	svc, cfg, answered := inFlightService(t)
	rotator, metricsURL := svc.RotatorAddr(), svc.ConsoleURL()+"metrics"
	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), cfg.Shutdown.Deadline.D())
		defer cancel()
		stopped <- svc.Stop(ctx)
	}()
	testkit.WaitFor(t, time.Minute, "the rotator refusing new clients", func() bool {
		c, err := net.Dial("tcp", rotator)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	select {
	case code := <-answered:
		t.Fatalf("the request in flight ended (%d) before the check: the slow proxy should hold it 8 s", code)
	default:
	}
	if resp, err := http.Get(metricsURL); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("console during the rotator's drain: %v %v; want /metrics served until the end", resp, err)
	} else {
		resp.Body.Close()
	}
	if code := <-answered; code != http.StatusOK {
		t.Errorf("the request in flight at the stop got %d, want 200 (drained)", code)
	}
	if err := <-stopped; err != nil {
		t.Errorf("stop: %v", err)
	}
	if resp, err := http.Get(metricsURL); err == nil {
		resp.Body.Close()
		t.Errorf("console still answers after Stop")
	}
}

// TestStopPastDeadline: a stop whose deadline ends while a request is still in flight cuts it and
// returns an error (proxyline run then exits 3, not 0: "exit 0 when everything stopped within the
// deadline").
func TestStopPastDeadline(t *testing.T) {
	svc, _, answered := inFlightService(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := svc.Stop(ctx); err == nil {
		t.Error("Stop returned nil although its deadline passed with a request in flight")
	}
	if code := <-answered; code == http.StatusOK {
		t.Error("the request in flight got 200 although the stop's deadline cut it")
	}
}

// inFlightService starts a Service whose pool holds one slow lab proxy (8 s per request), a
// rotator drain of 1 min and a shutdown deadline of 2 min, and sends one request through its
// rotator; it returns once the request is with the upstream. answered gets the request's status
// (0: failed).
func inFlightService(t *testing.T) (svc *Service, cfg Config, answered chan int) {
	t.Helper()
	l := testdb.Lab(t, lab.Config{Slow: 1, SlowDelay: 8 * time.Second})
	database := filepath.Join(t.TempDir(), "run.db")
	st := testdb.OpenAt(t, database, queue.Migrate)
	p := l.Truth()[0].Proxy
	if err := pool.Record(context.Background(), st.DB(), pool.Source{JobID: 1, Attempt: 1}, []pool.Check{{Given: p,
		Result: check.Result{Proxy: p, Class: check.Alive, CheckedAt: time.Now(), Total: time.Millisecond}}}); err != nil {
		t.Fatal(err)
	}
	cfg = Default()
	cfg.Database.URL = database
	cfg.Rotate.Listen, cfg.Console.Listen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Rotate.Drain, cfg.Shutdown.Deadline = Duration(time.Minute), Duration(2*time.Minute)
	svc, err := New(Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	rurl, _ := url.Parse("http://" + svc.RotatorAddr())
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(rurl)}, Timeout: 2 * time.Minute}
	t.Cleanup(client.CloseIdleConnections)
	answered = make(chan int, 1)
	go func() {
		resp, err := client.Get(l.JudgeURL())
		if err != nil {
			answered <- 0
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	testkit.WaitFor(t, time.Minute, "the request sent upstream", func() bool {
		s := svc.rotator.Stats()
		return len(s) == 1 && s[0].Requests == 1
	})
	return svc, cfg, answered
}
