package proctab

import (
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// startSleepers starts n `sleep` processes under one shell in their own process group and
// returns when all are running. Cleanup sends SIGTERM to the group (the shell traps it, reaps
// its children and exits), then SIGKILL if it lingers, and waits for the shell.
func startSleepers(tb testing.TB, n int) {
	tb.Helper()
	script := `trap 'wait; exit 0' TERM; i=0; while [ $i -lt ` + strconv.Itoa(n) + ` ]; do sleep 300 & i=$((i+1)); done; echo ready; wait`
	cmd := exec.Command("sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
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

func BenchmarkSnapshot(b *testing.B) {
	startSleepers(b, 500)
	r := NewReader()
	snap, err := r.Snapshot(nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		snap, err = r.Snapshot(snap)
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(snap)), "procs")
}
