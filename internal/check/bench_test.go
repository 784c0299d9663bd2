package check

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/lab"
	"github.com/proxyline/proxyline/proxy"
)

// BenchmarkCheck measures one check of a live lab proxy per protocol. The lab runs in this
// process, so CPU profiles include it: look at this package's frames. The whole-system
// benchmark (lab in its own process, 20,000 proxies) is scripts/checkbench.
func BenchmarkCheck(b *testing.B) {
	l, err := lab.Start(context.Background(), lab.Config{HTTP: 64, SOCKS5: 64, Refused: 64})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := l.Stop(context.Background()); err != nil {
			b.Errorf("stop lab: %v", err)
		}
	}()
	byScheme := map[string][]proxy.Proxy{}
	for _, t := range l.Truth() {
		byScheme[t.Kind] = append(byScheme[t.Kind], t.Proxy)
	}
	for _, judge := range []string{l.JudgeURL(), l.JudgeTLSURL()} {
		c, err := New(Options{Judge: judge, RootCAs: l.CAPool(), Timeout: 5 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Prepare(context.Background()); err != nil {
			b.Fatal(err)
		}
		for _, kind := range []string{lab.KindHTTP, lab.KindSOCKS5, lab.KindRefused} {
			benchKind(b, c, kind, judge == l.JudgeTLSURL(), byScheme[kind])
		}
	}
}

func benchKind(b *testing.B, c *Checker, kind string, tls bool, ps []proxy.Proxy) {
	name := kind
	if tls {
		name += "-tls"
	}
	{
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				r := c.Check(context.Background(), ps[i%len(ps)])
				i++
				if (r.Class == Alive) != (kind != lab.KindRefused) {
					b.Fatalf("%s: %s %s", r.Proxy, r.Class, r.Err)
				}
			}
		})
	}
}

// BenchmarkCheckHTTPS measures one check through a live lab HTTP proxy (CONNECT) to an https
// judge, the path of issue H2, with allocations per check (-benchmem): "tls12-resumed" is what a
// Checker does after Prepare (the judge's TLS 1.2 session, shared by all checks, resumed: no
// certificate to verify, no key exchange), "tls13-resumed" the same in TLS 1.3 (for a judge that
// refuses TLS 1.2: one X25519 exchange), "post-quantum" with Options.PostQuantum (TLS 1.3,
// X25519MLKEM768), "tls12-full" a new Checker for every check (a full handshake: the chain and
// the judge's signature verified, one X25519 exchange). It reports the share of handshakes that
// resumed, and the CPU time (user+sys) per check of the whole process: the lab runs in it too, so
// this is both ends' cost (in a CPU profile, look at this package's frames for ours alone).
//
//	go test -run '^$' -bench CheckHTTPS -benchmem ./internal/check
func BenchmarkCheckHTTPS(b *testing.B) {
	l, err := lab.Start(context.Background(), lab.Config{HTTP: 64})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := l.Stop(context.Background()); err != nil {
			b.Errorf("stop lab: %v", err)
		}
	}()
	ps := l.Candidates()
	newChecker := func(b *testing.B, pq, prepare bool) *Checker {
		c, err := New(Options{Judge: l.JudgeTLSURL(), RootCAs: l.CAPool(), Timeout: 5 * time.Second, RealIP: "127.0.0.1", PostQuantum: pq})
		if err != nil {
			b.Fatal(err)
		}
		if prepare {
			if err := c.Prepare(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
		return c
	}
	check := func(b *testing.B, c *Checker, i int) {
		if r := c.Check(context.Background(), ps[i%len(ps)]); r.Class != Alive {
			b.Fatalf("%s: %s %s", r.Proxy, r.Class, r.Err)
		}
	}
	for _, tt := range []struct {
		name  string
		pq    bool
		tls13 bool // checks use modern TLS (TLS 1.3) even though the judge speaks TLS 1.2
		fresh bool // a new Checker, without Prepare, for every check
	}{
		{name: "tls12-resumed"}, {name: "tls13-resumed", tls13: true}, {name: "post-quantum", pq: true},
		{name: "tls12-full", fresh: true},
	} {
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			c := newChecker(b, tt.pq, !tt.fresh)
			if tt.tls13 {
				c.tls.Store(c.modernTLS)
				check(b, c, 0) // the first TLS 1.3 handshake is full
			}
			var full, resumed int64
			count := func(c *Checker) {
				full, resumed = full+c.tlsFull.Load(), resumed+c.tlsResumed.Load()
			}
			if !tt.fresh {
				full = -c.tlsFull.Load() // Prepare's and the first one above
			}
			i := 0
			cpu0 := processCPU(b)
			for b.Loop() {
				i++
				if tt.fresh {
					c = newChecker(b, false, false)
					c.tls.Store(c.resumableTLS)
				}
				check(b, c, i)
				if tt.fresh {
					count(c)
				}
			}
			if !tt.fresh {
				count(c)
			}
			b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/float64(max(i, 1)), "cpu-µs/op")
			b.ReportMetric(float64(resumed)/float64(max(full+resumed, 1)), "resumed/check")
		})
	}
}

// processCPU returns the CPU time (user+sys) this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
