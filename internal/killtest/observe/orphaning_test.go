package observe

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/proxyline/proxyline/internal/proctab"
	"github.com/proxyline/proxyline/internal/testkit"
)

// Tests of how the observer times orphans: real process trees, real signals. They assert bounds
// that hold by construction (a lower bound never exceeds the truth), never the observer's speed:
// the orphans live long enough (2 s) that any sane machine confirms them.

// orphanOf waits until the attributed process matching pred has exited and returns it.
func exitedProcess(t *testing.T, o *Observer, what string, pred func(Process) bool) Process {
	t.Helper()
	var p Process
	testkit.WaitFor(t, 15*time.Second, what, func() bool {
		var ok bool
		p, ok = find(o.Processes(), pred)
		return ok && !p.DeadBy.IsZero() && (p.Exited || p.ReapedByHarness)
	})
	return p
}

// TestOrphanExitsByItself: `sh -c 'sleep 2 & exit 0'`: sleep outlives its shell by 2 s, then
// exits by itself (status 0, reaped by the harness). The observer records the orphaning with a
// lower bound above the delivery bound, whatever the sampling saw.
func TestOrphanExitsByItself(t *testing.T) {
	for _, pidfd := range []bool{true, false} {
		t.Run(map[bool]string{true: "pidfd", false: "samples only"}[pidfd], func(t *testing.T) {
			o := newObserver(t, Config{noPidfd: !pidfd})
			if o.Capabilities().Pidfd != pidfd {
				t.Fatalf("capabilities %+v", o.Capabilities())
			}
			cmd := startComponent(t, o, "sh", "-c", "sleep 2 & exit 0")
			p := exitedProcess(t, o, "orphaned sleep exited", func(p Process) bool { return command(p.Cmdline, p.Comm) == "sleep 2" })
			if p.Orphaned == nil {
				t.Fatalf("sleep %+v: not recorded as orphaned", p)
			}
			lo, hi := p.WithoutParent(time.Now())
			t.Logf("ran without its parent between %v and %v", lo, hi)
			if lo <= o.cfg.OrphanBound || hi < lo || hi > time.Minute {
				t.Errorf("ran without its parent between %v and %v: want more than the bound %v", lo, hi, o.cfg.OrphanBound)
			}
			if p.Status == nil || p.Status.Code != 0 || p.Status.Signal != 0 || !p.ReapedByHarness {
				t.Errorf("status %+v reaped %v: want exit 0, reaped by the harness", p.Status, p.ReapedByHarness)
			}
			if p.Orphaned.NewPPID != os.Getpid() && !p.Orphaned.AtFirstSight {
				t.Errorf("orphaning %+v: want re-parented to the harness", p.Orphaned)
			}
			// Born and orphaned between two samples, it is first seen a child of the harness;
			// otherwise its parent is the shell.
			if a := p.Ancestors; len(a) == 0 || (a[0].PID != cmd.Process.Pid && !p.Orphaned.AtFirstSight) ||
				(a[0].PID == cmd.Process.Pid && a[0].Command() != "sh -c sleep 2 & exit 0") {
				t.Errorf("ancestors %+v: want the shell with its command first", p.Ancestors)
			}
		})
	}
}

// TestPdeathsigChildIsNoOrphan: a child with a parent-death SIGKILL dies microseconds after its
// parent. Whatever the sampling, its lower bound must not exceed the delivery bound: a proper
// fix is never a false failure.
func TestPdeathsigChildIsNoOrphan(t *testing.T) {
	for i := range 3 {
		o := newObserver(t, Config{})
		cmd := startComponent(t, o, "sh", "-c", "setpriv --pdeathsig KILL sleep 30 & wait")
		var child Process
		testkit.WaitFor(t, 5*time.Second, "child exec'ed", func() bool {
			var ok bool
			child, ok = find(o.Alive(), func(p Process) bool { return p.Comm == "sleep" && p.Parent.PID == cmd.Process.Pid })
			return ok
		})
		if err := syscall.Kill(cmd.Process.Pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		p := exitedProcess(t, o, "child died with its parent", func(p Process) bool { return p.Key == child.Key })
		if p.Orphaned != nil {
			lo, hi := p.WithoutParent(time.Now())
			t.Logf("round %d: ran without its parent between %v and %v", i, lo, hi)
			if lo > o.cfg.OrphanBound {
				t.Errorf("round %d: a parent-death child ran at least %v without its parent (bound %v): %+v", i, lo, o.cfg.OrphanBound, p.Orphaned)
			}
		}
		if p.Status == nil || p.Status.Signal != syscall.SIGKILL {
			t.Errorf("round %d: status %+v, want killed by SIGKILL", i, p.Status)
		}
		if err := o.Stop(context.Background()); err != nil {
			t.Errorf("round %d: stop observer: %v", i, err)
		}
	}
}

// TestChildBeforeParent: a shell that waits for its child and then exits: the child died first,
// so it is no orphan (its lower bound stays at or below zero).
func TestChildBeforeParent(t *testing.T) {
	o := newObserver(t, Config{})
	cmd := startComponent(t, o, "sh", "-c", "sleep 0.3; exit 0")
	p := exitedProcess(t, o, "child exited", func(p Process) bool { return p.Comm == "sleep" && p.Parent.PID == cmd.Process.Pid })
	if p.Orphaned != nil {
		if lo, _ := p.WithoutParent(time.Now()); lo > 0 {
			t.Errorf("a child that exited before its parent ran %v without it: %+v", lo, p.Orphaned)
		}
	}
}

// TestBeginStop: the stop phase starts after every exit already signalled is recorded.
func TestBeginStop(t *testing.T) {
	o := newObserver(t, Config{})
	if !o.StopPhase().IsZero() {
		t.Fatal("stop phase before BeginStop")
	}
	cmd := startComponent(t, o, "sleep", "30")
	testkit.WaitFor(t, 5*time.Second, "component seen", func() bool {
		_, ok := find(o.Alive(), func(p Process) bool { return p.PID == cmd.Process.Pid })
		return ok
	})
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	// Wait for the exit without reaping (the component's Wait does that; if it was first, the
	// process is gone all the same).
	var info unix.Siginfo
	_ = unix.Waitid(unix.P_PID, cmd.Process.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
	at := o.BeginStop()
	p, _ := find(o.Processes(), func(p Process) bool { return p.PID == cmd.Process.Pid })
	if p.DeadBy.IsZero() || p.DeadBy.After(at) {
		t.Errorf("exit recorded by %v, stop phase at %v: want the exit before", p.DeadBy, at)
	}
	if o.StopPhase() != at {
		t.Errorf("StopPhase %v, want %v", o.StopPhase(), at)
	}
}

// pidfds counts this process's open pidfds.
func pidfds(t *testing.T) int {
	t.Helper()
	fds, err := proctab.FDs(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, fd := range fds {
		if fd.Class == proctab.ClassPidfd {
			n++
		}
	}
	return n
}

// TestPidfdsClosed: the exit watch holds one pidfd per live watched process and closes it at
// the exit: 300 short-lived processes leave no pidfd behind in the harness.
func TestPidfdsClosed(t *testing.T) {
	o := newObserver(t, Config{})
	before := pidfds(t)
	cmd := startComponent(t, o, "sh", "-c", "i=0; while [ $i -lt 300 ]; do /bin/sleep 0.01; i=$((i+1)); done")
	var during int
	testkit.WaitFor(t, 60*time.Second, "component done", func() bool {
		during = max(during, pidfds(t))
		p, ok := find(o.Processes(), func(p Process) bool { return p.PID == cmd.Process.Pid })
		return ok && !p.DeadBy.IsZero()
	})
	o.BeginStop() // records every exit already signalled
	// The component's own os.Process holds a pidfd until its Wait (in startComponent) returns.
	end := time.Now().Add(10 * time.Second)
	for pidfds(t) > before && time.Now().Before(end) {
		time.Sleep(10 * time.Millisecond) // polling with a deadline
	}
	if after := pidfds(t); after > before {
		t.Errorf("pidfds: %d before, up to %d during, %d after: want no growth", before, during, after)
	}
	if n := len(o.Processes()); n < 50 {
		t.Errorf("only %d processes attributed: the watch was not exercised", n)
	}
}
