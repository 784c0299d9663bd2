package check

import (
	"context"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/lab"
	"github.com/proxyline/proxyline/proxy"
)

// BenchmarkCheck measures one check of a live lab proxy per protocol. The lab runs in this
// process, so CPU profiles include it: look at this package's frames. The whole-system
// benchmark (lab in its own process, 20,000 proxies) is internal/check/bench.
func BenchmarkCheck(b *testing.B) {
	l, err := lab.Start(context.Background(), lab.Config{HTTP: 64, SOCKS5: 64, Refused: 64})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Stop()
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
