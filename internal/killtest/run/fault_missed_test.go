package run

import (
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/proctab"
	"github.com/proxyline/proxyline/internal/testkit"
)

// TestProcessEnded: a fault fires on a process trigger only while its process still runs; an
// exited one (a zombie not yet reaped), a reaped one and a reused pid all count as ended, so a
// late firing is a miss (the known-bad case: a worker killed after its checker finished leaves
// no orphan, and a broken system would PASS).
func TestProcessEnded(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	st, err := proctab.Stat(pid)
	if err != nil {
		t.Fatal(err)
	}
	if processEnded(pid, st.StartTime) {
		t.Fatal("a running process counts as ended")
	}
	if !processEnded(pid, st.StartTime+1) {
		t.Error("a pid with another start time (reused) counts as running")
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 30*time.Second, "the killed sleep is a zombie", func() bool {
		s, err := proctab.Stat(pid)
		return err == nil && s.State == 'Z'
	})
	if !processEnded(pid, st.StartTime) {
		t.Error("an exited, unreaped process (zombie) counts as running")
	}
	_ = cmd.Wait()
	if !processEnded(pid, st.StartTime) {
		t.Error("a reaped process counts as running")
	}
}
