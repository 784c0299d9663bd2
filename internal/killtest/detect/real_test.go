package detect

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/killtest/observe"
	"github.com/proxyline/proxyline/internal/proctab"
	"github.com/proxyline/proxyline/internal/testkit"
)

// These tests start real processes and share the process-wide subreaper flag, so they do not
// run in parallel with each other.

func TestOrphansReparented(t *testing.T) {
	o := newObserver(t)
	cleanupLeftovers(t, o)
	c := start(t, o, nil, "sh", "-c", "sleep 30 >/dev/null & echo $!; exit 0")
	pid, err := strconv.Atoi(c.expect(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	_ = c.cmd.Wait() // sh exits by itself, leaving sleep behind
	// The evidence's wchan is where the process sleeps; a process still starting (on a busy
	// machine, for a long while) runs and has none: wait until the sleep sleeps.
	testkit.WaitFor(t, time.Minute, "the orphaned sleep asleep (a wchan)", func() bool { return proctab.Wchan(pid) != "" })
	o.BeginStop()
	r := Orphans(t.Context(), o, OrphanOptions{Grace: 300 * time.Millisecond})
	requireVerdict(t, r, Fail)
	if len(r.Evidence) != 1 {
		t.Fatalf("evidence %+v: want the one sleep", r.Evidence)
	}
	e := r.Evidence[0]
	if e.PID != pid || e.Class != OrphanReparented || !e.Cookie || e.Cmdline != "sleep 30" || len(e.PPIDChain) == 0 || e.Wchan == "" {
		t.Errorf("evidence = %+v: want sleep %d re-parented, with cookie and parent chain", e, pid)
	}
	if e.WithoutParentMin <= 200*time.Millisecond || !strings.Contains(e.Detail, "orphaned during the run") ||
		len(e.Chain) == 0 || !strings.HasPrefix(e.Chain[0].Command, "sh -c sleep 30") && e.Chain[0].PID != os.Getpid() {
		t.Errorf("evidence = %+v: want orphaned during the run, with its parent's command", e)
	}
	// Killed now (and reaped by the test, so its status is unknown to the observer), it was
	// orphaned during the run: still a failure, as one that has ended.
	killLeftover(t, e.PID, e.StartTime)
	r = Orphans(t.Context(), o, OrphanOptions{Grace: 300 * time.Millisecond})
	requireVerdict(t, r, Fail)
	if len(r.Evidence) != 1 || r.Evidence[0].Class != OrphanDuringRun || r.Evidence[0].PID != pid ||
		!strings.Contains(r.Evidence[0].Ended, "reaped by its parent of then") {
		t.Errorf("after kill: evidence %+v: want one %q killed by SIGKILL", r.Evidence, OrphanDuringRun)
	}
}

func TestOrphansSetsidEscapee(t *testing.T) {
	o := newObserver(t)
	cleanupLeftovers(t, o)
	c := start(t, o, nil, "sh", "-c", "setsid sh -c 'sleep 30 >/dev/null & echo $!' & wait; exit 0")
	c.expect(t, "")
	c.stop(t) // SIGTERM to the component's group: the escapee is in another session
	o.BeginStop()
	r := Orphans(t.Context(), o, OrphanOptions{Grace: 300 * time.Millisecond})
	requireVerdict(t, r, Fail)
	i := slices.IndexFunc(r.Evidence, func(e Evidence) bool { return e.Cmdline == "sleep 30" })
	if i < 0 {
		t.Fatalf("evidence %+v: want sleep 30", r.Evidence)
	}
	if e := r.Evidence[i]; !e.Cookie || e.SID == c.cmd.Process.Pid || !strings.Contains(e.Detail, "setsid") {
		t.Errorf("evidence = %+v: want a setsid escapee found by cookie", e)
	}
}

func TestOrphansCleanStop(t *testing.T) {
	o := newObserver(t)
	cleanupLeftovers(t, o)
	c := start(t, o, nil, "sh", "-c", "sleep 30 >/dev/null & echo $!; wait")
	c.expect(t, "")
	c.stop(t) // SIGTERM to the group: sh and sleep both go
	o.BeginStop()
	r := Orphans(t.Context(), o, OrphanOptions{Grace: 2 * time.Second})
	requireVerdict(t, r, Pass)
}

func TestZombiesReal(t *testing.T) {
	o := newObserver(t)
	bad := start(t, o, nil, "sh", "-c", "true & exec sleep 30")        // sleep never waits for true
	good := start(t, o, nil, "sh", "-c", "true & wait; exec sleep 30") // sh waits first
	_ = good
	var r Result
	testkit.WaitFor(t, 5*time.Second, "zombie older than 1s", func() bool {
		r = Zombies(o, ZombieOptions{MinAge: time.Second})
		return r.Verdict == Fail
	})
	var culprits []int
	for _, e := range r.Evidence {
		if e.Class == "culprit-parent" {
			culprits = append(culprits, e.PID)
		}
	}
	if !slices.Equal(culprits, []int{bad.cmd.Process.Pid}) {
		t.Errorf("culprits %v, want only %d; evidence %+v", culprits, bad.cmd.Process.Pid, r.Evidence)
	}
}

func TestStoppedReal(t *testing.T) {
	o := newObserver(t)
	c := start(t, o, nil, "sleep", "30")
	pid := c.cmd.Process.Pid
	testkit.WaitFor(t, 5*time.Second, "sleep exec'ed", func() bool {
		return slices.ContainsFunc(o.Alive(), func(p observe.Process) bool { return p.PID == pid && p.Comm == "sleep" })
	})
	requireVerdict(t, Stopped(t.Context(), o, StoppedOptions{}), Pass)
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	var r Result
	testkit.WaitFor(t, 5*time.Second, "stopped process reported", func() bool {
		r = Stopped(t.Context(), o, StoppedOptions{})
		return r.Verdict == Fail
	})
	if len(r.Evidence) != 1 || r.Evidence[0].PID != pid || r.Evidence[0].Class != "stopped" {
		t.Errorf("evidence %+v: want %d stopped", r.Evidence, pid)
	}
	_ = syscall.Kill(pid, syscall.SIGCONT)
}

// runCycles drives n cycles of every component and marks each.
func runCycles(t *testing.T, o *observe.Observer, n int, cs ...*component) {
	t.Helper()
	for i := 1; i <= n; i++ {
		for _, c := range cs {
			c.cycle(t)
		}
		o.Mark(fmt.Sprintf("cycle-%d", i))
	}
}

func TestFDGrowthReal(t *testing.T) {
	o := newObserver(t)
	leak := fixture(t, o, "fdleak")
	steady := fixture(t, o, "fdsteady")
	runCycles(t, o, 7, leak, steady)
	r := FDGrowth(o, FDOptions{})
	requireVerdict(t, r, Fail)
	if len(r.Evidence) != 1 || r.Evidence[0].PID != leak.cmd.Process.Pid {
		t.Fatalf("evidence %+v: want only the leaker %d (steady is %d)", r.Evidence, leak.cmd.Process.Pid, steady.cmd.Process.Pid)
	}
	if d := r.Evidence[0].Detail; !strings.Contains(d, "+fd ") || !strings.Contains(d, "pipe:[") {
		t.Errorf("detail %q: want the new pipe targets", d)
	}
	if len(r.Series) != 1 || len(r.Series[0].Values) != 5 {
		t.Errorf("series %+v: want 5 judged cycles", r.Series)
	}
}

func TestFDGrowthSteadyPasses(t *testing.T) {
	o := newObserver(t)
	steady := fixture(t, o, "fdsteady")
	runCycles(t, o, 6, steady)
	requireVerdict(t, FDGrowth(o, FDOptions{}), Pass)
}

func TestMemoryGrowthReal(t *testing.T) {
	o := newObserver(t)
	grow := fixture(t, o, "memgrow")
	steady := fixture(t, o, "memsteady")
	runCycles(t, o, 7, grow, steady)
	r := MemoryGrowth(o, MemoryOptions{})
	requireVerdict(t, r, Fail)
	if len(r.Evidence) != 1 || r.Evidence[0].PID != grow.cmd.Process.Pid {
		t.Fatalf("evidence %+v: want only the grower %d (steady is %d)", r.Evidence, grow.cmd.Process.Pid, steady.cmd.Process.Pid)
	}
	if !strings.Contains(r.Evidence[0].Detail, "KiB/cycle") {
		t.Errorf("detail %q", r.Evidence[0].Detail)
	}
}

func TestPortsReal(t *testing.T) {
	o := newObserver(t)
	c := fixture(t, o, "listen")
	port, err := strconv.Atoi(c.expect(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	r := Ports(o, PortOptions{Ports: []int{port}})
	requireVerdict(t, r, Fail)
	var listening, unbindable bool
	for _, e := range r.Evidence {
		listening = listening || (e.Class == "listening" && e.PID == c.cmd.Process.Pid)
		unbindable = unbindable || (e.Class == "port" && strings.Contains(e.Detail, "held by pid "+strconv.Itoa(c.cmd.Process.Pid)))
	}
	if !listening || !unbindable {
		t.Errorf("evidence %+v: want the listener and the unbindable port with its holder", r.Evidence)
	}
	c.stop(t)
	// Other tests on this machine may briefly use the freed port as a connection's local port:
	// poll for a pass instead of expecting it at once.
	testkit.WaitFor(t, 10*time.Second, "port free again", func() bool {
		r = Ports(o, PortOptions{Ports: []int{port}})
		return r.Verdict == Pass
	})
	if r := Ports(o, PortOptions{Host: "10.0.0.1"}); r.Verdict != Unknown {
		t.Errorf("non-loopback host: verdict %s, want unknown", r.Verdict)
	}
	_ = os.Getpid
}

func TestInheritedFDsReal(t *testing.T) {
	for _, tt := range []struct {
		name   string
		script string
		want   Verdict
	}{
		{"inherited", "s=31; sleep $s & echo $!; wait", Fail},
		{"closed for the child", "s=31; sleep $s 3>&- & echo $!; wait", Pass},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := newObserver(t)
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			defer w.Close()
			c := startWith(t, o, func(cmd *exec.Cmd) { cmd.ExtraFiles = []*os.File{r} }, "sh", "-c", tt.script)
			pid, err := strconv.Atoi(c.expect(t, ""))
			if err != nil {
				t.Fatal(err)
			}
			testkit.WaitFor(t, 5*time.Second, "checker enriched", func() bool {
				return slices.ContainsFunc(o.Processes(), func(p observe.Process) bool {
					return p.PID == pid && cmdline(p.Cmdline, "") == "sleep 31" && p.FDs != nil
				})
			})
			if err := o.Refresh(); err != nil { // fds read after the exec, not in the fork→exec window
				t.Fatal(err)
			}
			res := InheritedFDs(o, InheritOptions{Commands: []string{"sleep 31"}})
			requireVerdict(t, res, tt.want)
			if tt.want == Fail && (len(res.Evidence) != 1 || res.Evidence[0].PID != pid || !strings.Contains(res.Evidence[0].Detail, "fd 3 → pipe:[")) {
				t.Errorf("evidence %+v: want fd 3 of %d", res.Evidence, pid)
			}
		})
	}
	o := newObserver(t)
	if r := InheritedFDs(o, InheritOptions{}); r.Verdict != Unknown {
		t.Errorf("no commands: %s, want unknown", r.Verdict)
	}
}
