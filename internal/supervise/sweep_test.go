package supervise

import (
	"context"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// deadOwner returns the pid and start time of a process that has exited and been reaped: a
// supervisor that is gone.
func deadOwner(t *testing.T) (int, uint64) {
	t.Helper()
	cmd := exec.Command(fixtureBin, "sleep")
	out := newReadyWriter("ready")
	cmd.Stdout = out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	<-out.ready
	pi, err := readProc(mustFS(t), cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	return pi.pid, pi.start
}

// startLeftover starts a fixture directly (no supervisor) with the given environment, waits
// until it is ready, and registers its removal by pid.
func startLeftover(t *testing.T, argv0 string, env []string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(fixtureBin, "sleep")
	cmd.Args[0] = argv0
	cmd.Env = env
	out := newReadyWriter("ready")
	cmd.Stdout = out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(waited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-waited })
	<-out.ready
	return cmd
}

// TestSweepSparesDecoy: a leftover with a dead owner's cookie is stopped; a decoy named like a
// checker but without a cookie, and a process whose owner lives, survive.
func TestSweepSparesDecoy(t *testing.T) {
	pid, start := deadOwner(t)
	dead := Cookie{OwnerPID: pid, OwnerStart: start, TaskID: "sweep-1"}
	self, err := readProc(mustFS(t), os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	live := Cookie{OwnerPID: self.pid, OwnerStart: self.start, TaskID: "sweep-live"}
	leftover := startLeftover(t, "mubeng", []string{CookieEnv + "=" + dead.String()})
	decoy := startLeftover(t, "mubeng", nil)
	owned := startLeftover(t, "mubeng", []string{CookieEnv + "=" + live.String()})

	dry, err := Sweep(context.Background(), SweepConfig{DryRun: true, Owner: pid})
	if err != nil {
		t.Fatal(err)
	}
	if len(dry.Processes) != 1 || dry.Processes[0].PID != leftover.Process.Pid || dry.Processes[0].Action != "would stop" {
		t.Fatalf("dry run: %+v, want exactly the leftover %d", dry.Processes, leftover.Process.Pid)
	}
	if p := dry.Processes[0]; p.Owner != dead.Owner() || len(p.Cmdline) == 0 || p.Cmdline[0] != "mubeng" || p.Started.IsZero() {
		t.Errorf("evidence incomplete: %+v", p)
	}
	if !alive(mustFS(t), leftover.Process.Pid, dry.Processes[0].StartTime) {
		t.Fatal("dry run touched the leftover")
	}

	rep, err := Sweep(context.Background(), SweepConfig{Grace: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	for _, p := range rep.Processes {
		if p.PID == decoy.Process.Pid || p.PID == owned.Process.Pid {
			t.Errorf("sweep touched %d: %+v", p.PID, p)
		}
		if p.PID == leftover.Process.Pid && p.Action == "stopped" {
			stopped = true
		}
	}
	if !stopped {
		t.Errorf("leftover %d not stopped: %+v", leftover.Process.Pid, rep)
	}
	for _, c := range []*exec.Cmd{decoy, owned} {
		if err := syscall.Kill(c.Process.Pid, 0); err != nil {
			t.Errorf("process %d without a dead owner's cookie was hurt: %v", c.Process.Pid, err)
		}
	}
}

// TestStartSweepsPredecessor: Start of a new supervisor removes the leftovers of a dead
// predecessor of the same name, and leaves those of another name (another program's tasks) to
// their own successor or to `proxyline cleanup`.
func TestStartSweepsPredecessor(t *testing.T) {
	pid, start := deadOwner(t)
	leftover := startLeftover(t, "checker", []string{CookieEnv + "=" + Cookie{OwnerPID: pid, OwnerStart: start, TaskID: "successor-0a0b0c-1"}.String()})
	other := startLeftover(t, "checker", []string{CookieEnv + "=" + Cookie{OwnerPID: pid, OwnerStart: start, TaskID: "another-0a0b0c-1"}.String()})
	var dir string
	if parent, err := DefaultCgroupParent(); err == nil {
		dir = parent + "/" + ownerDirName("successor-0a0b0c", pid, start)
		if err := os.MkdirAll(dir+"/task-1", 0o755); err != nil {
			dir = "" // no writable cgroup2 here: the process part still runs
		}
	}
	newStarted(t, Config{Name: "successor", Grace: 300 * time.Millisecond})
	if err := syscall.Kill(other.Process.Pid, 0); err != nil {
		t.Errorf("another supervisor's leftover %d was swept: %v", other.Process.Pid, err)
	}
	if err := syscall.Kill(leftover.Process.Pid, 0); err == nil {
		if pi, err := readProc(mustFS(t), leftover.Process.Pid); err == nil && pi.state != "Z" {
			t.Errorf("predecessor's leftover %d still runs", leftover.Process.Pid)
		}
	}
	if dir != "" {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("predecessor's cgroup %s not removed: %v", dir, err)
		}
	}
}
