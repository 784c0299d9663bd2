package observe

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// startSleepers starts n `sleep` processes under one shell in their own process group, with
// env in their environment. Cleanup sends SIGTERM to the group (the shell traps it, reaps its
// children and exits), SIGKILL if it lingers, and waits for the shell.
func startSleepers(tb testing.TB, n int, env ...string) {
	tb.Helper()
	script := `trap 'wait; exit 0' TERM; i=0; while [ $i -lt ` + strconv.Itoa(n) + ` ]; do sleep 300 & i=$((i+1)); done; echo ready; wait`
	cmd := exec.Command("sh", "-c", script)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	pgid := cmd.Process.Pid
	tb.Cleanup(func() {
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-done
		}
	})
	buf := make([]byte, 6)
	if _, err := out.Read(buf); err != nil || string(buf) != "ready\n" {
		tb.Fatalf("sleepers did not start: %q, %v", buf, err)
	}
}

// benchTick measures one 10 Hz sample (snapshot + attribution + zombies + orphan bookkeeping),
// without enrichment. The pidfd exit watch is set up as in a run (one pidfd per attributed
// process and per parent), so its per-sample cost is included.
func benchTick(b *testing.B, env ...string) {
	startSleepers(b, 500, env...)
	o, err := New(Config{Cookie: testCookie, EnrichEvery: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.startExitsLocked()
	if o.ex != nil {
		defer o.ex.close()
	}
	if err := o.tickLocked(time.Now(), true); err != nil { // first sight: environ of every pid
		b.Fatal(err)
	}
	o.lastRich = time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime(b)
	for b.Loop() {
		if err := o.tickLocked(time.Now(), false); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuTime(b)-cpu)/float64(b.N)/1e6, "cpu-ms/op")
	b.ReportMetric(float64(len(o.snap)), "procs")
	attributed := 0
	for _, p := range o.procs {
		if !p.Exited {
			attributed++
		}
	}
	b.ReportMetric(float64(attributed), "attributed")
	if o.ex != nil {
		b.ReportMetric(float64(len(o.ex.byID)), "pidfds")
	}
}

func BenchmarkTickUnattributed(b *testing.B) { benchTick(b) }
func BenchmarkTickAttributed(b *testing.B)   { benchTick(b, testCookie) }

// BenchmarkEnrich measures the 1 Hz enrichment of 500 attributed processes.
func BenchmarkEnrich(b *testing.B) {
	startSleepers(b, 500, testCookie)
	o, err := New(Config{Cookie: testCookie})
	if err != nil {
		b.Fatal(err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := o.tickLocked(time.Now(), false); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	cpu := cpuTime(b)
	for b.Loop() {
		o.enrichLocked(time.Now(), false)
	}
	b.ReportMetric(float64(cpuTime(b)-cpu)/float64(b.N)/1e6, "cpu-ms/op")
}

// cpuTime is the user+system CPU time of this process so far (wall time is noisy on a shared
// machine; CPU time is what the observer costs).
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkExitLoopIdle measures what the exit watch costs while nothing exits: 500 watched
// processes, the loop's quiet wait every 50 ms. One op is 100 ms of watching; the metric is CPU
// per second of watching (the sampling loop is held off, so it does not count).
func BenchmarkExitLoopIdle(b *testing.B) {
	startSleepers(b, 500, testCookie)
	o, err := New(Config{Cookie: testCookie, Interval: time.Hour, EnrichEvery: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	if err := o.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = o.Stop(context.Background()) })
	if !o.Capabilities().Pidfd {
		b.Skipf("no pidfd exit watch: %s", o.Capabilities().PidfdError)
	}
	b.ResetTimer()
	cpu := cpuTime(b)
	for b.Loop() {
		time.Sleep(100 * time.Millisecond) // the loop works meanwhile; this goroutine only waits
	}
	b.ReportMetric(float64(cpuTime(b)-cpu)/float64(b.N)/1e6*10, "cpu-ms/s")
	o.mu.Lock()
	b.ReportMetric(float64(len(o.ex.byID)), "pidfds")
	o.mu.Unlock()
}
