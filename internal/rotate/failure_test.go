package rotate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/internal/lab"
	"github.com/proxyline/proxyline/internal/pool"
	"github.com/proxyline/proxyline/internal/proxydial"
	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/internal/testdb"
	"github.com/proxyline/proxyline/internal/testkit"
	"github.com/proxyline/proxyline/proxy"
)

// TestUpstreamDies: half the upstreams die in the middle of a run (their lab stops: connections
// refused, tunnels cut); every request keeps succeeding, and the dead upstreams are benched.
func TestUpstreamDies(t *testing.T) {
	t.Parallel()
	stay := startLab(t, lab.Config{HTTP: 2, SOCKS5: 2})
	die := startLab(t, lab.Config{HTTP: 2, SOCKS5: 2})
	s, logs := startServer(t, Config{Retries: 4}, append(stay.Candidates(), die.Candidates()...))
	c := client(s, "", "")
	defer c.CloseIdleConnections()
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	stopLoad := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stopLoad:
					return
				default:
				}
				resp, err := c.Get(stay.BackendURL() + "bytes/100")
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = errors.New(resp.Status)
					}
				}
				if err != nil {
					failed.Add(1)
					t.Errorf("request failed: %v", err)
					continue
				}
				ok.Add(1)
			}
		})
	}
	testkit.WaitFor(t, 30*time.Second, "some load", func() bool { return ok.Load() >= 40 })
	if err := die.Stop(context.Background()); err != nil {
		t.Errorf("stop lab: %v", err)
	}
	before := ok.Load()
	testkit.WaitFor(t, 30*time.Second, "load after the death", func() bool { return ok.Load() >= before+80 })
	close(stopLoad)
	wg.Wait()
	dead := map[string]bool{}
	for _, p := range die.Candidates() {
		dead[(&proxy.Proxy{Scheme: p.Scheme, Host: p.Host, Port: p.Port}).String()] = true
	}
	for _, st := range s.Stats() {
		if dead[st.Upstream] && st.Failures > 0 && st.BenchedUntil.IsZero() {
			t.Errorf("dead upstream %s failed but is not benched: %+v", st.Upstream, st)
		}
		if !dead[st.Upstream] && st.Failures > 0 {
			t.Errorf("live upstream %s blamed: %+v", st.Upstream, st)
		}
	}
	if !strings.Contains(logs.String(), "upstream benched") {
		t.Error("no upstream was benched")
	}
	// A tunnel through a dead upstream is retried on a live one too.
	for range 4 {
		if _, err := viaTunnel(t, s, proxy.SOCKS5, "", "", stay); err != nil {
			t.Errorf("tunnel after the death: %v", err)
		}
	}
}

// TestNoUpstream: an empty list answers 503 with the reason (SOCKS5: general failure), the server
// keeps serving, and the list filled later is taken without a restart.
func TestNoUpstream(t *testing.T) {
	t.Parallel()
	l := startLab(t, lab.Config{HTTP: 1})
	list := filepath.Join(t.TempDir(), "list.txt")
	writeFile(t, list, "")
	s, _ := startServer(t, Config{From: list, Refresh: 20 * time.Millisecond}, nil)
	c := client(s, "", "")
	defer c.CloseIdleConnections()
	resp, err := c.Get(l.BackendURL() + "echo")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "no upstream available") ||
		!strings.Contains(string(body), "empty") {
		t.Errorf("empty list: %s %s", resp.Status, body)
	}
	_, err = viaTunnel(t, s, proxy.SOCKS5, "", "", l)
	var re *proxydial.ReplyError
	if !errors.As(err, &re) || re.Code != repGeneralFailure {
		t.Errorf("SOCKS5 with no upstream: %v", err)
	}
	_, err = viaTunnel(t, s, proxy.HTTP, "", "", l)
	if !errors.As(err, &re) || re.Code != http.StatusServiceUnavailable {
		t.Errorf("CONNECT with no upstream: %v", err)
	}
	writeList(t, list, l.Candidates())
	testkit.WaitFor(t, 30*time.Second, "the filled list", func() bool { return len(s.Stats()) == 1 })
	echo(t, c, l)
}

// TestFileWatch: the list replaced by rename is taken; truncated, emptied or filled with garbage
// it is not: the last good set stays and the reason is logged.
func TestFileWatch(t *testing.T) {
	t.Parallel()
	a := startLab(t, lab.Config{HTTP: 2})
	b := startLab(t, lab.Config{SOCKS5: 3})
	list := filepath.Join(t.TempDir(), "list.txt")
	writeList(t, list, a.Candidates())
	s, logs := startServer(t, Config{From: list, Refresh: 10 * time.Millisecond}, nil)
	c := client(s, "", "")
	defer c.CloseIdleConnections()
	upstreams := func() string {
		var names []string
		for _, st := range s.Stats() {
			names = append(names, st.Upstream)
		}
		return strings.Join(names, " ")
	}
	want := func(l *lab.Lab) string {
		old := s.set.Load()
		var ps []proxy.Proxy
		ps = append(ps, l.Candidates()...)
		set, _ := newSet(ps, &upstreamSet{byKey: map[string]*upstream{}}, nil)
		_ = old
		tmp := &Server{}
		tmp.set.Store(set)
		var names []string
		for _, st := range tmp.Stats() {
			names = append(names, st.Upstream)
		}
		return strings.Join(names, " ")
	}
	if upstreams() != want(a) {
		t.Fatalf("upstreams %q, want %q", upstreams(), want(a))
	}
	writeList(t, list, b.Candidates()) // rename over it
	testkit.WaitFor(t, 30*time.Second, "the renamed list", func() bool { return upstreams() == want(b) })
	echo(t, c, b)
	bad := []struct{ name, content string }{
		{"empty", ""},
		{"garbage", "\x00\x01garbage line\nnot a proxy at all\n"},
		{"bare", "127.0.0.9:8080\n"},
	}
	for _, tc := range bad {
		n := strings.Count(logs.String(), "proxy list not taken")
		writeFile(t, list, tc.content)
		testkit.WaitFor(t, 30*time.Second, tc.name+" rejected", func() bool { return strings.Count(logs.String(), "proxy list not taken") > n })
		if upstreams() != want(b) {
			t.Fatalf("%s: upstreams changed to %q", tc.name, upstreams())
		}
		echo(t, c, b)
	}
	// Truncated in place (same inode), then written again in place.
	if err := os.Truncate(list, 0); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(list, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range a.Candidates() {
		fmt.Fprintln(f, p.String())
	}
	f.Close()
	testkit.WaitFor(t, 30*time.Second, "the list rewritten in place", func() bool { return upstreams() == want(a) })
	n := strings.Count(logs.String(), "proxy list not taken")
	if err := os.Remove(list); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 30*time.Second, "the removal logged", func() bool { return strings.Count(logs.String(), "proxy list not taken") > n })
	echo(t, c, a)
}

// TestPoolSource serves the pool's live proxies, follows new check results without a restart,
// and records passive failures in the pool.
func TestPoolSource(t *testing.T) {
	t.Parallel()
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			testPoolSource(t, poolDatabase(t, engine))
		})
	}
}

func testPoolSource(t *testing.T, db string) {
	l := startLab(t, lab.Config{HTTP: 2, SOCKS5: 1, Refused: 2})
	st, err := queue.Open(context.Background(), queue.Config{Database: db})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var job atomic.Int64
	record := func(class check.Class, ps ...proxy.Proxy) {
		t.Helper()
		var cs []pool.Check
		for _, p := range ps {
			cs = append(cs, pool.Check{Given: p, Result: check.Result{Proxy: p, Class: class, CheckedAt: time.Now(), Total: time.Millisecond}})
		}
		if err := pool.Record(context.Background(), st.DB(), pool.Source{JobID: job.Add(1), Attempt: 1}, cs); err != nil {
			t.Fatal(err)
		}
	}
	var live, refused []proxy.Proxy
	for _, tr := range l.Truth() {
		if tr.Alive {
			live = append(live, tr.Proxy)
		} else {
			refused = append(refused, tr.Proxy)
		}
	}
	record(check.Alive, live[0])
	s, _ := startServer(t, Config{From: FromPool, Database: db, Refresh: 20 * time.Millisecond}, nil)
	if n := len(s.Stats()); n != 1 {
		t.Fatalf("%d upstreams at start, want 1", n)
	}
	c := client(s, "", "")
	defer c.CloseIdleConnections()
	echo(t, c, l)
	record(check.Alive, live[1:]...)
	testkit.WaitFor(t, 30*time.Second, "new live proxies", func() bool { return len(s.Stats()) == len(live) })
	record(check.Refused, live[0])
	testkit.WaitFor(t, 30*time.Second, "a proxy found dead", func() bool { return len(s.Stats()) == len(live)-1 })
	// Proxies the pool thinks alive but that refuse: the requests still succeed, and the pool
	// learns of the failures.
	record(check.Alive, refused...)
	testkit.WaitFor(t, 30*time.Second, "the refusing proxies", func() bool { return len(s.Stats()) == len(live)-1+len(refused) })
	for range 8 {
		echo(t, c, l)
	}
	testkit.WaitFor(t, 30*time.Second, "passive failures in the pool", func() bool {
		rows, err := st.DB().Query(context.Background(), `SELECT count(*) FROM proxyline_passive`)
		if err != nil {
			return false
		}
		defer rows.Close()
		var n int
		return rows.Next() && rows.Scan(&n) == nil && n == len(refused)
	})
}

// TestGracefulStop: Stop lets an open tunnel and a request in flight finish within its deadline;
// past the deadline it cuts what is left and returns the deadline's error.
func TestGracefulStop(t *testing.T) {
	t.Parallel()
	l := startLab(t, lab.Config{SOCKS5: 1})
	list := filepath.Join(t.TempDir(), "list.txt")
	writeList(t, list, l.Candidates())
	for _, tc := range []struct {
		name     string
		scheme   proxy.Scheme
		deadline time.Duration
		drained  bool
	}{
		{"socks5 drained", proxy.SOCKS5, 30 * time.Second, true}, {"socks5 cut", proxy.SOCKS5, 100 * time.Millisecond, false},
		{"connect drained", proxy.HTTP, 30 * time.Second, true}, {"connect cut", proxy.HTTP, 100 * time.Millisecond, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(Config{Listen: serveOptions("127.0.0.1:0"), From: list})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			p := proxy.Proxy{Scheme: tc.scheme, Host: "127.0.0.1", Port: uint16(s.Addr().(*net.TCPAddr).Port)}
			tun, err := proxydial.Dial(context.Background(), p, "tcp", backendAddr(t, l), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tun.Close()
			fmt.Fprintf(tun, "GET /slow?n=300000&d=1s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			if _, err := tun.Read(make([]byte, 1)); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), tc.deadline)
			defer cancel()
			stopped := make(chan error, 1)
			go func() { stopped <- s.Stop(ctx) }()
			rest, rerr := io.ReadAll(tun)
			tun.Close() // a client done with its tunnel closes it (half-closed, it would wait for the idle rule)
			complete := rerr == nil && strings.HasSuffix(string(rest), string([]byte{lab.PatternByte(299999)})) && len(rest) > 300000-100
			err = <-stopped
			if tc.drained && (err != nil || !complete) {
				t.Errorf("drain: stop %v, tunnel complete %v (%d bytes, %v)", err, complete, len(rest), rerr)
			}
			if !tc.drained && (!errors.Is(err, context.DeadlineExceeded) || complete) {
				t.Errorf("cut: stop %v, tunnel complete %v", err, complete)
			}
			if _, err := net.Dial("tcp", s.Addr().String()); err == nil {
				t.Error("still accepting after Stop")
			}
		})
	}
}

// TestFastest: once every upstream is measured, the slow one is left alone.
func TestFastest(t *testing.T) {
	t.Parallel()
	l := startLab(t, lab.Config{HTTP: 3, Slow: 1, SlowDelay: time.Second})
	s, _ := startServer(t, Config{Policy: Fastest}, l.Candidates())
	c := client(s, "", "")
	defer c.CloseIdleConnections()
	slowIP := ""
	for _, tr := range l.Truth() {
		if tr.Kind == lab.KindSlow {
			slowIP = tr.ExitIP
		}
	}
	seen := map[string]bool{}
	for range 4 { // the unmeasured ones first: each once
		seen[echo(t, c, l).RemoteIP] = true
	}
	if len(seen) != 4 {
		t.Fatalf("first four requests used %d upstreams, want each once", len(seen))
	}
	for range 12 {
		if ip := echo(t, c, l).RemoteIP; ip == slowIP {
			t.Fatalf("fastest chose the slow upstream %s", ip)
		}
	}
}

// TestRunForce: Run drains after its context ends, and a closed force channel cuts the drain
// short: Run returns while a tunnel still has 20 s to go.
func TestRunForce(t *testing.T) {
	t.Parallel()
	l := startLab(t, lab.Config{SOCKS5: 1})
	list := filepath.Join(t.TempDir(), "list.txt")
	writeList(t, list, l.Candidates())
	ctx, cancel := context.WithCancel(context.Background())
	force := make(chan struct{})
	logs := &testkit.Buffer{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{Listen: serveOptions(addr), From: list, Drain: time.Minute,
			Log: slog.New(slog.NewTextHandler(logs, nil))}, force)
	}()
	testkit.WaitFor(t, 30*time.Second, "ready", func() bool { return strings.Contains(logs.String(), "rotator ready") })
	_, port, _ := net.SplitHostPort(addr)
	pn, _ := strconv.Atoi(port)
	tun, err := proxydial.Dial(context.Background(), proxy.Proxy{Scheme: proxy.SOCKS5, Host: "127.0.0.1", Port: uint16(pn)},
		"tcp", backendAddr(t, l), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tun.Close()
	fmt.Fprintf(tun, "GET /slow?n=1000000&d=20s HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, err := tun.Read(make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	cancel()
	testkit.WaitFor(t, 30*time.Second, "draining", func() bool { return strings.Contains(logs.String(), "rotator stopping") })
	select {
	case err := <-done:
		t.Fatalf("Run returned %v before the tunnel ended or the force", err)
	default:
	}
	close(force)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after force: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run still draining 15 s after the force")
	}
}

// poolDatabase returns a fresh database of the engine, dropped when t ends (internal/testdb).
func poolDatabase(t *testing.T, engine string) string {
	return testdb.Database(t, engine)
}
