package external

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/proxyline/proxyline/proxy"
)

// peakHeap samples the live heap (runtime/metrics, heap objects) every millisecond until stop
// is called, and returns the highest sample in MB.
func peakHeap() (stop func() float64) {
	runtime.GC()
	var mu sync.Mutex
	peak := uint64(0)
	done, finished := make(chan struct{}), make(chan struct{})
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	go func() {
		defer close(finished)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			mu.Lock()
			peak = max(peak, sample[0].Value.Uint64())
			mu.Unlock()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() float64 {
		close(done)
		<-finished
		mu.Lock()
		defer mu.Unlock()
		return float64(peak) / (1 << 20)
	}
}

// BenchmarkFloodedReport: a tool writes 2,000,000 lines, none of them in its chunk, to {out}
// (or stdout). The report is read as a stream and abandoned at its bound: the worker's heap
// stays near its baseline. Reports peak-heap-MB (live heap objects, sampled every ms).
//
//	go test -run '^$' -bench FloodedReport -benchtime 3x ./internal/check/external/
func BenchmarkFloodedReport(b *testing.B) {
	for _, where := range []string{"out", "stdout"} {
		b.Run(where, func(b *testing.B) {
			tmpl := fakeChecker(b) + " -f {in} -mode flood -n 2000000"
			if where == "out" {
				tmpl += " -o {out}"
			}
			c := &Checker{Template: tmpl, Runner: runner, TempDir: b.TempDir()}
			chunk, _ := testChunk(b)
			peak := 0.0
			for b.Loop() {
				stop := peakHeap()
				_, err := c.CheckChunk(context.Background(), chunk)
				peak = max(peak, stop())
				if !errors.Is(err, ErrFailed) {
					b.Fatalf("CheckChunk: %v, want the report refused", err)
				}
			}
			b.ReportMetric(peak, "peak-heap-MB")
		})
	}
}

// BenchmarkWholeReport is the former way, for comparison: the same 2,000,000-line report read
// whole with proxy.ReadFile.
func BenchmarkWholeReport(b *testing.B) {
	path := filepath.Join(b.TempDir(), "out.txt")
	c := &Checker{Template: fakeChecker(b) + " -f {in} -mode flood -n 2000000 -o " + path, Runner: runner, TempDir: b.TempDir()}
	chunk, _ := testChunk(b)
	if _, err := c.CheckChunk(context.Background(), chunk); err != nil {
		b.Fatal(err)
	}
	peak := 0.0
	for b.Loop() {
		stop := peakHeap()
		ps, _, err := proxy.ReadFile(path, proxy.Auto)
		peak = max(peak, stop())
		if err != nil || len(ps) != 2000000 {
			b.Fatalf("ReadFile: %d proxies, %v", len(ps), err)
		}
	}
	b.ReportMetric(peak, "peak-heap-MB")
	os.Remove(path)
}
