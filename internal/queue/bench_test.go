package queue_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/internal/lab"
	"github.com/proxyline/proxyline/internal/pool"
	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/internal/testkit"
	"github.com/proxyline/proxyline/proxy"
)

// BenchmarkEnqueue100k inserts 100,000 proxies as 1,000 check jobs of 100, in one transaction.
// Target: <= 2 s per op on each engine.
func BenchmarkEnqueue100k(b *testing.B) {
	chunks := queue.Split(proxies(100_000), "bench", 100)
	for _, engine := range engines {
		b.Run(engine, func(b *testing.B) {
			st := open(b, database(b, engine))
			ctx := context.Background()
			b.ResetTimer()
			for b.Loop() {
				if _, err := st.EnqueueChecks(ctx, chunks, queue.CheckOptions{Judge: "http://127.0.0.2/"}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkQueueVsCheck checks a 20,000-proxy lab once with `proxyline check` and once through
// the queue (enqueue, two worker processes, status --wait), with about the same number of checks
// in flight (check -c 100; 2 workers x 4 jobs x 13 proxies), and reports both wall times and their ratio. Target: ratio <= 1.15.
// Run it alone: go test -run '^$' -bench QueueVsCheck -benchtime 1x ./internal/queue/
// queueMix is a lab and the flags that run it through check and through the queue with the same
// total concurrency.
type queueMix struct {
	name    string
	lab     lab.Config
	timeout string
	conc    int // check -c; the two workers get half each
	jobs    int // --concurrency of each worker
}

// BenchmarkQueueVsCheck compares `proxyline check` with the queue (enqueue, two worker processes,
// status --wait) on the same 20,000-proxy lab list, at the same total concurrency:
//   - cpu: fast proxies only (live HTTP and SOCKS5, refused, liars), CPU-bound: shows the
//     queue's own cost (River, the pool writes);
//   - timeouts: issue A's list (5,000 live HTTP, 5,000 live SOCKS5, 5,000 refused, 5,000
//     blackholes) at -c 1000 -t 2s, where wall time is the blackholes' timeouts.
func BenchmarkQueueVsCheck(b *testing.B) {
	for _, m := range []queueMix{
		{name: "cpu", lab: lab.Config{HTTP: 12000, SOCKS5: 4000, Refused: 2000, Liar: 2000}, timeout: "5s", conc: 100, jobs: 8},
		{name: "timeouts", lab: lab.Config{HTTP: 5000, SOCKS5: 5000, Refused: 5000, Blackhole: 5000}, timeout: "2s", conc: 1000, jobs: 20},
	} {
		b.Run(m.name, func(b *testing.B) {
			l, lines := startLab(b, m.lab)
			list := writeList(b, lines)
			for _, engine := range engines {
				b.Run(engine, func(b *testing.B) { benchQueueVsCheck(b, l, list, engine, m) })
			}
		})
	}
}

func benchQueueVsCheck(b *testing.B, l *lab.Lab, list, engine string, m queueMix) {
	for b.Loop() {
		// proxyline check
		began := time.Now()
		cp := start(b, "check", "check", "-f", list, "--judge", l.JudgeURL(), "-t", m.timeout, "-c", strconv.Itoa(m.conc))
		code := cp.wait(b, 10*time.Minute)
		out, errOut := cp.stdout.String(), cp.stderr.String()
		checkWall := time.Since(began)
		if code != 0 {
			b.Fatalf("check exit %d: %s", code, lastLines(errOut, 20))
		}
		live := strings.Count(out, "\n")
		checkCPU := cpuOf(cp)

		// the queue: workers first (their start-up is not counted), then enqueue and drain.
		db := database(b, engine)
		var ws []*proc
		for i := range 2 {
			ws = append(ws, start(b, fmt.Sprintf("worker%d", i), "worker", "--database", db,
				"--concurrency", strconv.Itoa(m.jobs), "--parallel", strconv.Itoa(m.conc/2)))
		}
		st := open(b, db)
		testkit.WaitFor(b, time.Minute, "two workers", func() bool {
			s, err := st.Status(context.Background())
			return err == nil && s.WorkersAlive == 2
		})
		began = time.Now()
		if code, _, errOut := run(b, time.Minute, "enqueue", "--database", db, "--chunk", "100", "--judge", l.JudgeURL(), "-t", m.timeout, list); code != 0 {
			b.Fatalf("enqueue exit %d: %s", code, errOut)
		}
		enqueueWall := time.Since(began)
		if code, _, errOut := run(b, 10*time.Minute, "status", "--database", db, "--wait", "10m", "--interval", "50ms"); code != 0 {
			b.Fatalf("status --wait exit %d: %s", code, errOut)
		}
		queueWall := time.Since(began)
		for _, w := range ws {
			_ = w.cmd.Process.Signal(syscall.SIGTERM)
			<-w.done
		}
		var queueCPU time.Duration
		for _, w := range ws {
			queueCPU += cpuOf(w)
		}
		s, err := st.Status(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if s.Pool.Alive != int64(live) {
			b.Errorf("queue found %d live proxies, check %d", s.Pool.Alive, live)
		}
		b.ReportMetric(checkWall.Seconds(), "check-s")
		b.ReportMetric(queueWall.Seconds(), "queue-s")
		b.ReportMetric(queueWall.Seconds()/checkWall.Seconds(), "ratio")
		b.ReportMetric(enqueueWall.Seconds(), "enqueue-s")
		b.Logf("cpu: check %s, workers %s", checkCPU.Round(time.Millisecond), queueCPU.Round(time.Millisecond))
		b.Logf("20,000 proxies: check %s, queue %s (enqueue %s), ratio %s", checkWall.Round(time.Millisecond),
			queueWall.Round(time.Millisecond), enqueueWall.Round(time.Millisecond), strconv.FormatFloat(queueWall.Seconds()/checkWall.Seconds(), 'f', 3, 64))
	}
}

// cpuOf is the user+system CPU time of an exited process.
func cpuOf(p *proc) time.Duration {
	if p == nil || p.cmd.ProcessState == nil {
		return 0
	}
	return p.cmd.ProcessState.UserTime() + p.cmd.ProcessState.SystemTime()
}

// BenchmarkRecordChunk writes the results of one 100-proxy job to the pool (no job completion).
// In "flip", every proxy is named by two sources and each job flips all of them between alive
// and timeout: the pool's counters' worst case (every result moves the class counts and both
// sources' alive counts).
func BenchmarkRecordChunk(b *testing.B) {
	for _, engine := range engines {
		for _, flip := range []bool{false, true} {
			name := engine
			if flip {
				name += "/flip"
			}
			b.Run(name, func(b *testing.B) { benchRecordChunk(b, engine, flip) })
		}
	}
}

func benchRecordChunk(b *testing.B, engine string, flip bool) {
	st := open(b, database(b, engine))
	ctx := context.Background()
	var cs []pool.Check
	var seen []pool.Sighting
	for i, s := range proxies(100) {
		p, err := proxy.Parse(s)
		if err != nil {
			b.Fatal(err)
		}
		cs = append(cs, pool.Check{Given: p, Result: check.Result{Proxy: p, Class: check.Alive, CheckedAt: time.Now(), Total: time.Duration(i) * time.Millisecond}})
		seen = append(seen, pool.Sighting{Source: "a", Proxy: p, Seen: time.Now()}, pool.Sighting{Source: "b", Proxy: p, Seen: time.Now()})
	}
	if flip {
		if err := pool.RecordSightings(ctx, st.DB(), seen); err != nil {
			b.Fatal(err)
		}
	}
	job := int64(0)
	for b.Loop() {
		job++
		if flip {
			for i := range cs {
				cs[i].Result.Class = []check.Class{check.Alive, check.Timeout}[job%2]
				cs[i].Result.CheckedAt = time.Now()
			}
		}
		if err := pool.Record(ctx, st.DB(), pool.Source{JobID: job, Attempt: 1, Worker: "w"}, cs); err != nil {
			b.Fatal(err)
		}
	}
}
