package watch

import (
	"context"
	"syscall"
	"testing"
	"time"
)

// cpuTime is this process's user+system CPU time (the machine is shared: wall time says little).
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkScan: one scan of this machine's whole process table by a watch that reads every
// process's cookie and checks a parent rule and two watched processes (no probes). The details
// of a process are read once, so steady-state scans cost the snapshot and the matching.
func BenchmarkScan(b *testing.B) {
	f, err := Parse("bench.yaml", []byte(`
name: bench
system:
  cookie: BENCH_NO_SUCH_COOKIE
  roots: ['^nothing-is-a-root$']
  rules: [{match: 'no-such-checker', parent: 'no-such-worker'}]
processes:
  - {name: go, match: 'watch\.test', fds: {max: 1000}, rss: {max: 1000}}
`))
	if err != nil {
		b.Fatal(err)
	}
	w, err := New(Config{File: f})
	if err != nil {
		b.Fatal(err)
	}
	w.Scan(context.Background()) // the first scan reads every process's details
	start := cpuTime(b)
	n := 0
	for b.Loop() {
		w.Scan(context.Background())
		n++
	}
	b.ReportMetric(float64(cpuTime(b)-start)/float64(n)/1e6, "cpu-ms/op")
	b.ReportMetric(float64(len(w.procs)), "procs")
}
