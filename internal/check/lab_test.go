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
	t.Cleanup(l.Stop)
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
	tlsJudge := strings.HasPrefix(judgeURL, "https:")
	truth := map[string]lab.Truth{}
	var candidates []proxy.Proxy
	for _, tr := range l.Truth() {
		if only == "" || tr.Kind == only {
			truth[tr.Proxy.Addr()] = tr
			candidates = append(candidates, tr.Proxy)
		}
	}
	var mu sync.Mutex // emit is called from one goroutine at a time; the mutex proves nothing else is needed
	inEmit := false
	seen := map[string]bool{}
	c.CheckAll(ctx, candidates, concurrency, func(r Result) {
		mu.Lock()
		if inEmit {
			t.Error("emit called concurrently")
		}
		inEmit = true
		mu.Unlock()
		defer func() { mu.Lock(); inEmit = false; mu.Unlock() }()

		key := r.Proxy.Addr()
		tr, ok := truth[key]
		if !ok {
			t.Errorf("result for %s, which is not a candidate", r.Proxy)
			return
		}
		if seen[key] {
			t.Errorf("two results for %s", key)
		}
		seen[key] = true
		wantClass, wantAlive := tr.Class, tr.Alive
		if tr.Delay > 0 && timeout <= tr.Delay {
			wantClass, wantAlive = lab.ClassTimeout, false
		}
		if tlsJudge && tr.Kind == lab.KindLiar {
			// A liar cannot forge a TLS judge; the lab's liar hangs up after "200 Connection
			// established", which is a failed handshake rather than a forged page.
			wantClass = string(TLSError)
		}
		if string(r.Class) != wantClass || r.OK() != wantAlive {
			t.Errorf("%s (%s): class %s (%s), want %s", r.Proxy, tr.Kind, r.Class, r.Err, wantClass)
			return
		}
		if !r.OK() {
			return
		}
		wantAnon := tr.Anonymity
		if tlsJudge {
			// Through a CONNECT tunnel to a TLS judge a proxy cannot add headers: every live
			// proxy is elite for HTTPS traffic, whatever it does to plain HTTP.
			wantAnon = string(Elite)
		}
		if r.ExitIP != tr.ExitIP {
			t.Errorf("%s (%s): exit IP %s, want %s: a result reported for the wrong proxy?", r.Proxy, tr.Kind, r.ExitIP, tr.ExitIP)
		}
		if string(r.Anonymity) != wantAnon {
			t.Errorf("%s (%s): anonymity %s, want %s", r.Proxy, tr.Kind, r.Anonymity, wantAnon)
		}
		if r.Proxy.Scheme != tr.Scheme {
			t.Errorf("%s (%s): scheme %s, want %s", r.Proxy, tr.Kind, r.Proxy.Scheme, tr.Scheme)
		}
		if tr.Proxy.Scheme != proxy.Unknown && r.Proxy != tr.Proxy {
			t.Errorf("result proxy %v, want the candidate %v", r.Proxy, tr.Proxy)
		}
	})
	if len(seen) != len(truth) {
		t.Errorf("%d results for %d candidates", len(seen), len(truth))
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
		{"http judge, slow alive", l.JudgeURL(), 4 * time.Second, ""},
		{"https judge, slow alive", l.JudgeTLSURL(), 4 * time.Second, ""},
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
	checkLab(t, l, l.JudgeURL(), 10*time.Second, 600, "")
}

// TestProbeEveryScheme lists every live kind of lab proxy as a bare host:port (credentials kept)
// and verifies the probe finds a protocol that works: its own, or SOCKS4 for a SOCKS4a proxy
// (with an IP judge the two requests are the same).
func TestProbeEveryScheme(t *testing.T) {
	t.Parallel()
	l := startLab(t, lab.Config{HTTP: 3, HTTPAuth: 3, HTTPS: 3, SOCKS4: 3, SOCKS4A: 3, SOCKS5: 3, SOCKS5Auth: 3, Refused: 2, Blackhole: 2})
	c, err := New(Options{Judge: l.JudgeURL(), RootCAs: l.CAPool(), Timeout: 3 * time.Second})
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
