package check

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/lab"
	"github.com/proxyline/proxyline/proxy"
)

// startLab starts a lab for one test and stops it at cleanup.
func startLab(t *testing.T, cfg lab.Config) *lab.Lab {
	t.Helper()
	l, err := lab.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Stop(context.Background()); err != nil {
			t.Errorf("stop lab: %v", err)
		}
	})
	return l
}

// checkLab checks every lab candidate with the given judge and compares each result with the
// truth, field by field. The results are gathered by CheckAll with high concurrency, so a result
// attributed to the wrong proxy (mubeng's shared-global bug) shows as a wrong exit IP.
func checkLab(t *testing.T, l *lab.Lab, judgeURL string, timeout time.Duration, concurrency int, only string) {
	t.Helper()
	c, err := New(Options{Judge: judgeURL, RootCAs: l.CAPool(), Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	if got := c.RealIP(); got != "127.0.0.1" {
		t.Fatalf("RealIP = %q, want 127.0.0.1 (the judge is 127.0.0.2)", got)
	}
	var truth []lab.Truth
	var candidates []proxy.Proxy
	for _, tr := range l.Truth() {
		if only == "" || tr.Kind == only {
			truth = append(truth, tr)
			candidates = append(candidates, tr.Proxy)
		}
	}
	var mu sync.Mutex // emit is called from one goroutine at a time; the mutex proves nothing else is needed
	inEmit := false
	var outcomes []lab.Outcome
	c.CheckAll(ctx, candidates, concurrency, func(r Result) {
		mu.Lock()
		if inEmit {
			t.Error("emit called concurrently")
		}
		inEmit = true
		mu.Unlock()
		defer func() { mu.Lock(); inEmit = false; mu.Unlock() }()
		outcomes = append(outcomes, lab.Outcome{Proxy: r.Proxy, Class: string(r.Class), Err: r.Err, ExitIP: r.ExitIP, Anonymity: string(r.Anonymity)})
	})
	// Every result is compared with the truth field by field: a result attributed to the wrong
	// proxy shows as a wrong exit IP, a second or foreign result as unexpected.
	s := lab.Compare(truth, outcomes, lab.Conditions{Timeout: timeout, TLSJudge: strings.HasPrefix(judgeURL, "https:")})
	if !s.OK() {
		var b strings.Builder
		_ = s.Write(&b)
		t.Errorf("results differ from the lab's truth:\n%s", b.String())
	}
}

// TestLabTruth checks a lab with every kind of proxy, through the plain and the TLS judge, with
// a timeout above and below the slow proxies' delay: zero false positives or negatives, and the
// right class, exit IP, anonymity and scheme for every proxy. The short timeout is used on the
// slow proxies alone: on a loaded machine under -race, a short timeout would fail live ones too.
func TestLabTruth(t *testing.T) {
	t.Parallel()
	const n = 6
	l := startLab(t, lab.Config{
		HTTP: n, HTTPAuth: n, HTTPS: n, SOCKS4: n, SOCKS4A: n, SOCKS5: n, SOCKS5Auth: n,
		Transparent: n, Anonymous: n, Refused: n, Blackhole: n, Slow: n, Liar: n, Alter: n, Bare: n,
		SlowDelay: time.Second,
	})
	tests := []struct {
		name    string
		judge   string
		timeout time.Duration
		only    string // check only this kind
	}{
		// Timeouts far above what a live proxy needs: on a busy machine under -race a check
		// can take seconds, and a live proxy must never be judged dead for that.
		{"http judge, slow alive", l.JudgeURL(), 20 * time.Second, ""},
		{"https judge, slow alive", l.JudgeTLSURL(), 20 * time.Second, ""},
		{"slow times out", l.JudgeURL(), 500 * time.Millisecond, lab.KindSlow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checkLab(t, l, tt.judge, tt.timeout, 64, tt.only)
		})
	}
}

// TestLabConcurrentExitIPs runs hundreds of checks at once against distinct proxies and verifies
// every result carries its own proxy's exit IP: nothing mutable is shared between checks.
func TestLabConcurrentExitIPs(t *testing.T) {
	t.Parallel()
	l := startLab(t, lab.Config{HTTP: 200, SOCKS5: 150, SOCKS4: 50, Transparent: 50, Anonymous: 50, Bare: 100})
	checkLab(t, l, l.JudgeURL(), 30*time.Second, 600, "")
}

// TestProbeEveryScheme lists every live kind of lab proxy as a bare host:port (credentials kept)
// and verifies the probe finds a protocol that works: its own, or SOCKS4 for a SOCKS4a proxy
// (with an IP judge the two requests are the same).
func TestProbeEveryScheme(t *testing.T) {
	t.Parallel()
	l := startLab(t, lab.Config{HTTP: 3, HTTPAuth: 3, HTTPS: 3, SOCKS4: 3, SOCKS4A: 3, SOCKS5: 3, SOCKS5Auth: 3, Refused: 2, Blackhole: 2})
	// A timeout far above what a live proxy needs (a busy machine under -race is slow); the
	// blackholes take it in full, in parallel.
	c, err := New(Options{Judge: l.JudgeURL(), RootCAs: l.CAPool(), Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	truth := l.Truth()
	bare := make([]proxy.Proxy, len(truth))
	for i, tr := range truth {
		bare[i] = tr.Proxy
		bare[i].Scheme = proxy.Unknown
	}
	byAddr := map[string]lab.Truth{}
	for _, tr := range truth {
		byAddr[tr.Proxy.Addr()] = tr
	}
	c.CheckAll(context.Background(), bare, 32, func(r Result) {
		tr := byAddr[r.Proxy.Addr()]
		want := tr.Scheme
		if want == proxy.SOCKS4A {
			want = proxy.SOCKS4
		}
		if !tr.Alive {
			want = proxy.Unknown
		}
		if string(r.Class) != tr.Class || r.Proxy.Scheme != want {
			t.Errorf("bare %s (%s): %s %q (%s), want %s %q", tr.Proxy, tr.Kind, r.Class, r.Proxy.Scheme, r.Err, tr.Class, want)
		}
		if r.OK() && r.ExitIP != tr.ExitIP {
			t.Errorf("bare %s (%s): exit IP %s, want %s", tr.Proxy, tr.Kind, r.ExitIP, tr.ExitIP)
		}
	})
}

// TestCheckStream: proxies are checked as they arrive on the channel and each result comes with
// the proxy as given (a bare one without the scheme its probe found); after a cancel nothing new
// starts, checks in flight end as canceled, and it returns once the channel is closed.
func TestCheckStream(t *testing.T) {
	t.Parallel()
	l := startLab(t, lab.Config{HTTP: 2, Bare: 2, Refused: 1, Blackhole: 2})
	c, err := New(Options{Judge: l.JudgeURL(), Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := c.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	var quick, holes []lab.Truth
	for _, tr := range l.Truth() {
		if tr.Kind == lab.KindBlackhole {
			holes = append(holes, tr)
		} else {
			quick = append(quick, tr)
		}
	}
	in := make(chan proxy.Proxy)
	type emitted struct {
		given proxy.Proxy
		r     Result
	}
	got := make(chan emitted, 100)
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		c.CheckStream(ctx, in, 2, func(given proxy.Proxy, r Result) { got <- emitted{given, r} })
	}()
	var outcomes []lab.Outcome
	for _, tr := range quick {
		in <- tr.Proxy
		e := <-got // one at a time: each is checked as it comes, not when the stream ends
		if e.given != tr.Proxy {
			t.Errorf("emitted with %v, given %v", e.given, tr.Proxy)
		}
		outcomes = append(outcomes, lab.Outcome{Proxy: e.r.Proxy, Class: string(e.r.Class), Err: e.r.Err, ExitIP: e.r.ExitIP, Anonymity: string(e.r.Anonymity)})
	}
	if s := lab.Compare(quick, outcomes, lab.Conditions{Timeout: 30 * time.Second}); !s.OK() {
		var b strings.Builder
		_ = s.Write(&b)
		t.Errorf("results differ from the lab's truth:\n%s", b.String())
	}
	for _, tr := range holes {
		in <- tr.Proxy // both slots now hang on a blackhole (or are about to start)
	}
	cancel()
	in <- quick[0].Proxy // received after the cancel: dropped
	close(in)
	select {
	case <-returned:
	case <-time.After(20 * time.Second):
		t.Fatal("CheckStream did not return after the cancel and the close")
	}
	close(got)
	for e := range got {
		if e.r.Class != Canceled || e.given == quick[0].Proxy {
			t.Errorf("after the cancel: %v emitted as %s", e.given, e.r.Class)
		}
	}
}
