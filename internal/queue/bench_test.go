package queue_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/lab"
	"github.com/proxyline/proxyline/internal/queue"
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
// the queue (enqueue, two worker processes, status --wait), with the same total number of
// checks in flight (100), and reports both wall times and their ratio. Target: ratio <= 1.15.
// Run it alone: go test -run '^$' -bench QueueVsCheck -benchtime 1x ./internal/queue/
func BenchmarkQueueVsCheck(b *testing.B) {
	l, lines := startLab(b, lab.Config{HTTP: 12000, SOCKS5: 4000, Refused: 2000, Liar: 2000})
	list := writeList(b, lines)
	for b.Loop() {
		// proxyline check
		began := time.Now()
		code, out, errOut := run(b, 10*time.Minute, "check", "-f", list, "--judge", l.JudgeURL(), "-t", "5s", "-c", "100")
		checkWall := time.Since(began)
		if code != 0 {
			b.Fatalf("check exit %d: %s", code, lastLines(errOut, 20))
		}
		live := strings.Count(out, "\n")

		// the queue: workers first (their start-up is not counted), then enqueue and drain.
		db := database(b, "sqlite")
		var ws []*proc
		for i := range 2 {
			ws = append(ws, start(b, fmt.Sprintf("worker%d", i), "worker", "--database", db, "--concurrency", "4", "--parallel", "13"))
		}
		st := open(b, db)
		waitFor(b, time.Minute, "two workers", func() bool {
			s, err := st.Status(context.Background())
			return err == nil && s.WorkersAlive == 2
		})
		began = time.Now()
		if code, _, errOut := run(b, time.Minute, "enqueue", "--database", db, "--judge", l.JudgeURL(), "-t", "5s", list); code != 0 {
			b.Fatalf("enqueue exit %d: %s", code, errOut)
		}
		if code, _, errOut := run(b, 10*time.Minute, "status", "--database", db, "--wait", "10m", "--interval", "50ms"); code != 0 {
			b.Fatalf("status --wait exit %d: %s", code, errOut)
		}
		queueWall := time.Since(began)
		for _, w := range ws {
			_ = w.cmd.Process.Signal(syscall.SIGTERM)
			<-w.done
		}
		s, err := st.Status(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if s.Pool.Alive != int64(live) {
			b.Errorf("queue found %d live proxies, check %d", s.Pool.Alive, live)
		}
		if testing.Verbose() {
			b.Logf("worker0 log tail:\n%s", lastLines(ws[0].stderr.String(), 60))
		}
		b.ReportMetric(checkWall.Seconds(), "check-s")
		b.ReportMetric(queueWall.Seconds(), "queue-s")
		b.ReportMetric(queueWall.Seconds()/checkWall.Seconds(), "ratio")
		b.Logf("20,000 proxies: check %s, queue %s, ratio %s", checkWall.Round(time.Millisecond),
			queueWall.Round(time.Millisecond), strconv.FormatFloat(queueWall.Seconds()/checkWall.Seconds(), 'f', 3, 64))
	}
}
