package rotate

import (
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/proxyline/proxyline/internal/lab"
	"github.com/proxyline/proxyline/proxy"
)

// liveKinds is a lab with one upstream of every live protocol.
var liveKinds = lab.Config{HTTP: 1, HTTPAuth: 1, HTTPS: 1, SOCKS4: 1, SOCKS4A: 1, SOCKS5: 1, SOCKS5Auth: 1}

// TestRoundRobinEveryProtocol sends requests through every kind of upstream in turn, inbound as
// plain HTTP, CONNECT and SOCKS5: each upstream is used exactly as often as the others, and the
// backend sees each upstream's own address.
func TestRoundRobinEveryProtocol(t *testing.T) {
	t.Parallel()
	l := startLab(t, liveKinds)
	s, _ := startServer(t, Config{UpstreamCA: caFile(t, l)}, l.Candidates())
	ips := exitIPs(l)
	n := len(ips)
	counts := map[string]int{}
	c := client(s, "", "")
	for range 2 * n {
		counts[echo(t, c, l).RemoteIP]++
	}
	for _, scheme := range []proxy.Scheme{proxy.HTTP, proxy.SOCKS5} {
		for range n {
			e, err := viaTunnel(t, s, scheme, "", "", l)
			if err != nil {
				t.Fatalf("%s tunnel: %v", scheme, err)
			}
			counts[e.RemoteIP]++
		}
	}
	for ip := range ips {
		if counts[ip] != 4 {
			t.Errorf("upstream %s (%s) used %d times, want 4: %v", ips[ip], ip, counts[ip], counts)
		}
	}
	for _, st := range s.Stats() {
		if st.Requests != 4 || st.Failures != 0 || st.Latency <= 0 || st.BytesIn == 0 {
			t.Errorf("stats %+v", st)
		}
		if strings.Contains(st.Upstream, "pw-") {
			t.Errorf("stats name credentials: %s", st.Upstream)
		}
	}
}

// TestRotateEvery checks that with --rotate-every N, under concurrency, every upstream serves
// exactly its share: the N requests of a window go to one upstream (mubeng fails N-1 of N).
func TestRotateEvery(t *testing.T) {
	t.Parallel()
	l := startLab(t, lab.Config{HTTP: 5})
	for _, n := range []int{1, 2, 3, 7} {
		for _, policy := range []Policy{RoundRobin, Random} {
			s, _ := startServer(t, Config{RotateEvery: n, Policy: policy}, l.Candidates())
			c := client(s, "", "")
			const windows = 4
			total := 5 * n * windows
			var mu sync.Mutex
			counts := map[string]int{}
			var wg sync.WaitGroup
			sem := make(chan struct{}, 8)
			for range total {
				wg.Go(func() {
					sem <- struct{}{}
					defer func() { <-sem }()
					resp, err := c.Get(l.BackendURL() + "echo")
					if err != nil {
						t.Error(err)
						return
					}
					defer resp.Body.Close()
					b, _ := io.ReadAll(resp.Body)
					ip := between(string(b), `"remote_ip":"`, `"`)
					mu.Lock()
					counts[ip]++
					mu.Unlock()
				})
			}
			wg.Wait()
			for ip, k := range counts {
				if k%n != 0 {
					t.Errorf("N=%d %s: upstream %s served %d requests, not a multiple of N: %v", n, policy, ip, k, counts)
				}
				if policy == RoundRobin && k != n*windows {
					t.Errorf("N=%d round-robin: upstream %s served %d, want %d: %v", n, ip, k, n*windows, counts)
				}
			}
			c.CloseIdleConnections()
		}
	}
}

func between(s, a, b string) string {
	_, rest, _ := strings.Cut(s, a)
	v, _, _ := strings.Cut(rest, b)
	return v
}

// TestStickySession binds a session name in the user name to one upstream while other requests
// rotate, and a benched upstream breaks the binding.
func TestStickySession(t *testing.T) {
	t.Parallel()
	l := startLab(t, lab.Config{HTTP: 4})
	s, _ := startServer(t, Config{}, l.Candidates())
	a, b, plain := client(s, "x-session-a", "p"), client(s, "session-b", ""), client(s, "", "")
	ipA, ipB := echo(t, a, l).RemoteIP, echo(t, b, l).RemoteIP
	seen := map[string]bool{}
	for range 8 {
		if ip := echo(t, a, l).RemoteIP; ip != ipA {
			t.Fatalf("session a moved from %s to %s", ipA, ip)
		}
		if ip := echo(t, b, l).RemoteIP; ip != ipB {
			t.Fatalf("session b moved from %s to %s", ipB, ip)
		}
		seen[echo(t, plain, l).RemoteIP] = true
	}
	if len(seen) != 4 {
		t.Errorf("requests without a session used %d upstreams, want all 4", len(seen))
	}
	e, err := viaTunnel(t, s, proxy.SOCKS5, "x-session-a", "p", l)
	if err != nil || e.RemoteIP != ipA {
		t.Errorf("session a over SOCKS5: %s %v, want %s", e.RemoteIP, err, ipA)
	}
	// Bench a's upstream: the session moves, and stays on its new upstream.
	for _, u := range s.set.Load().list {
		if u.p.Host == ipA {
			u.benchedUntil.Store(1 << 62)
		}
	}
	moved := echo(t, a, l).RemoteIP
	if moved == ipA {
		t.Fatal("session a stayed on a benched upstream")
	}
	if again := echo(t, a, l).RemoteIP; again != moved {
		t.Errorf("session a moved again: %s then %s", moved, again)
	}
	a.CloseIdleConnections()
	b.CloseIdleConnections()
	plain.CloseIdleConnections()
}

// TestStickyClient binds by client address.
func TestStickyClient(t *testing.T) {
	t.Parallel()
	l := startLab(t, lab.Config{HTTP: 3})
	s, _ := startServer(t, Config{Sticky: StickyClient}, l.Candidates())
	c := client(s, "", "")
	first := echo(t, c, l).RemoteIP
	for range 5 {
		if ip := echo(t, c, l).RemoteIP; ip != first {
			t.Fatalf("client moved from %s to %s", first, ip)
		}
	}
	c.CloseIdleConnections()
}

func TestStickyMap(t *testing.T) {
	t.Parallel()
	m := newStickyMap(100, 2)
	u1, u2 := &upstream{key: "1"}, &upstream{key: "2"}
	m.put("a", u1, 0)
	if m.get("a", 99) != u1 || m.get("a", 100) != nil {
		t.Error("lifetime not kept")
	}
	m.put("a", u1, 0)
	m.put("b", u2, 0)
	m.get("a", 1) // a is now the most recent
	m.put("c", u2, 0)
	if m.len() != 2 || m.get("b", 1) != nil || m.get("a", 1) != u1 {
		t.Errorf("LRU cap: len %d", m.len())
	}
	m.put("a", u2, 50) // moved: a new lifetime
	if m.get("a", 120) != u2 {
		t.Error("a moved binding did not get a new lifetime")
	}
}

// caFile writes the lab CA for https upstreams.
func caFile(t *testing.T, l *lab.Lab) string {
	t.Helper()
	p := t.TempDir() + "/ca.pem"
	writeFile(t, p, string(l.CAPEM()))
	return p
}
