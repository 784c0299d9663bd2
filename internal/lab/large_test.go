package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
)

// benchConfig is the benchmark's farm: 20,000 candidates.
func benchConfig() Config {
	return Config{HTTP: 5000, SOCKS5: 5000, Refused: 5000, Blackhole: 5000}
}

// checkAll fetches the judge through every candidate at the given concurrency and reports how
// many outcomes disagree with the truth. It stands in for a checker. Blackholes get
// holeTimeout, the others timeout (a test under -race on a busy machine needs more time for the
// live ones than it can afford to wait on every blackhole).
func checkAll(ctx context.Context, l *Lab, truth []Truth, concurrency int, timeout, holeTimeout time.Duration) (wrong int64, err error) {
	var bad atomic.Int64
	var mu sync.Mutex
	var first error
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(concurrency)
	for _, tr := range truth {
		g.Go(func() error {
			f := fetch{proxy: tr.Proxy, scheme: tr.Scheme, judgeURL: l.JudgeURL(), token: "t", timeout: timeout}
			if tr.Kind == KindBlackhole {
				f.timeout = holeTimeout
			}
			page, err := f.do(ctx)
			ok := false
			switch tr.Class {
			case ClassAlive:
				ok = err == nil && page.Token == "t" && page.RemoteIP == tr.ExitIP
			case ClassRefused:
				ok = errors.Is(err, syscall.ECONNREFUSED)
			case ClassTimeout:
				ok = isTimeout(err)
			}
			if !ok {
				bad.Add(1)
				mu.Lock()
				if first == nil {
					first = fmt.Errorf("%s %v: err %v, page %+v", tr.Kind, tr.Proxy, err, page)
				}
				mu.Unlock()
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return bad.Load(), err
	}
	return bad.Load(), first
}

// TestLargeLabFits: a 20,000-proxy lab costs a handful of file descriptors, stays within budget
// under load, and gives every one back.
func TestLargeLabFits(t *testing.T) {
	// Not parallel: it counts the process's file descriptors.
	if testing.Short() {
		t.Skip("large lab in -short mode")
	}
	before := countFDs(t)
	start := time.Now()
	l, err := Start(context.Background(), benchConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer stopLab(t, l)
	t.Logf("20,000-proxy lab started in %v", time.Since(start))
	used := countFDs(t) - before
	if used > 20 {
		t.Fatalf("an idle 20,000-proxy lab holds %d fds, want at most 20", used)
	}
	t.Logf("an idle 20,000-proxy lab holds %d fds", used)

	// Hold 1,000 blackhole connections at once: the lab holds one fd for each, no more.
	var held []net.Conn
	truth := l.Truth()
	for _, tr := range truth {
		if tr.Kind != KindBlackhole || len(held) == 1000 {
			continue
		}
		c, err := net.Dial("tcp", tr.Proxy.Addr())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	deadline := time.Now().Add(10 * time.Second)
	for countFDs(t)-before < 2000 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond) // poll until the lab accepted them all
	}
	if used := countFDs(t) - before; used > 2000+20 {
		t.Fatalf("1,000 held blackhole connections cost %d fds, want about 2,000", used)
	}
	for _, c := range held {
		c.Close()
	}

	// Check a sample of every kind at concurrency 500.
	var sample []Truth
	for i := 0; i < len(truth); i += 11 { // 11: every kind, as the kinds interleave
		sample = append(sample, truth[i])
	}
	start = time.Now()
	wrong, err := checkAll(context.Background(), l, sample, 500, 10*time.Second, 300*time.Millisecond)
	if err != nil || wrong != 0 {
		t.Fatalf("checking %d candidates: %d wrong, %v", len(sample), wrong, err)
	}
	t.Logf("checked %d candidates at concurrency 500 in %v", len(sample), time.Since(start))

	// Everything goes back: the lab side closes when the clients do.
	deadline = time.Now().Add(10 * time.Second)
	for countFDs(t)-before > 20 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if used := countFDs(t) - before; used > 20 {
		t.Fatalf("after the load the lab holds %d fds, want at most 20", used)
	}
	stopLab(t, l)
	if after := countFDs(t); after != before {
		t.Fatalf("fds before %d, after Stop %d", before, after)
	}
}

// BenchmarkCheck20k checks the benchmark farm (5,000 live HTTP, 5,000 live SOCKS5, 5,000 refused,
// 5,000 blackholes) at concurrency 1,000 with a 1 s timeout, using the test client as the checker.
// It reports the peak fd count and heap in use of the whole process (lab and client).
func BenchmarkCheck20k(b *testing.B) {
	l, err := Start(context.Background(), benchConfig())
	if err != nil {
		b.Fatal(err)
	}
	defer stopLab(b, l)
	truth := l.Truth()
	var peak atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // sample the fd count
		defer wg.Done()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if n := int64(countFDs(b)); n > peak.Load() {
					peak.Store(n)
				}
			}
		}
	}()
	var wrongTotal int64
	b.ResetTimer()
	for b.Loop() {
		wrong, err := checkAll(context.Background(), l, truth, 1000, time.Second, time.Second)
		if wrong > 0 { // on a busy machine live checks can time out at 1 s: report, don't fail
			b.Logf("%d of %d outcomes wrong, first: %v", wrong, len(truth), err)
			wrongTotal += wrong
		} else if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	close(stop)
	wg.Wait()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(len(truth)), "checks/op")
	b.ReportMetric(float64(wrongTotal)/float64(b.N), "wrong/op")
	b.ReportMetric(float64(peak.Load()), "peak-fds")
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
}
