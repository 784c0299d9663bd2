package extract

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/proxyline/proxyline/proxy"
)

// mixedText is about 4 MiB of what sources serve: plain host:port lines, URLs with and without
// credentials, prose with times and version numbers, markup. About a third of the lines hold a
// candidate.
func mixedText() []byte {
	r := rand.New(rand.NewPCG(1, 2))
	var b bytes.Buffer
	for b.Len() < 4<<20 {
		ip := fmt.Sprintf("%d.%d.%d.%d", 1+r.IntN(223), r.IntN(256), r.IntN(256), 1+r.IntN(254))
		port := 1 + r.IntN(65535)
		switch r.IntN(6) {
		case 0:
			fmt.Fprintf(&b, "%s:%d\n", ip, port)
		case 1:
			fmt.Fprintf(&b, "socks5://user%d:pw%d@%s:%d\n", r.IntN(100), r.IntN(100), ip, port)
		case 2:
			fmt.Fprintf(&b, "<tr><td>%s</td><td>%d</td><td>elite</td><td>checked 12:%02d ago</td></tr>\n", ip, port, r.IntN(60))
		case 3:
			b.WriteString("Updated at 2026-12-01 10:42:17 UTC by list-bot v1.2.3 (see the README for usage: any text goes).\n")
		case 4:
			fmt.Fprintf(&b, "lorem ipsum dolor sit amet, consectetur adipiscing elit %d, sed do eiusmod tempor\n", port)
		default:
			fmt.Fprintf(&b, "http://%s:%d # last seen %d min ago\n", ip, port, r.IntN(60))
		}
	}
	return b.Bytes()
}

// BenchmarkText measures the text scanner on mixed text (one goroutine). MB/s is wall time;
// MB/cpu-s divides by the process's CPU time instead (user+sys, GC included), which a busy
// machine does not distort: that is the per-core figure.
func BenchmarkText(b *testing.B) {
	in := mixedText()
	n := 0
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		n = 0
		if err := Text(in, Options{}, func(proxy.Proxy) { n++ }); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, len(in), cpu)
	b.ReportMetric(float64(n), "candidates/op")
}

// cpuTime is the process's user+sys time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports MB per CPU second since start.
func reportCPU(b *testing.B, size int, start time.Duration) {
	if d := cpuTime() - start; d > 0 {
		b.ReportMetric(float64(size)*float64(b.N)/1e6/d.Seconds(), "MB/cpu-s")
	}
}

// BenchmarkTextList measures a plain host:port list, the densest case.
func BenchmarkTextList(b *testing.B) {
	var in bytes.Buffer
	for i := 0; in.Len() < 4<<20; i++ {
		fmt.Fprintf(&in, "10.%d.%d.%d:%d\n", i>>16&255, i>>8&255, i&255, 1024+i%60000)
	}
	b.SetBytes(int64(in.Len()))
	cpu := cpuTime()
	for b.Loop() {
		if err := Text(in.Bytes(), Options{}, func(proxy.Proxy) {}); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, in.Len(), cpu)
}
