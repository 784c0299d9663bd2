package proctab_test

// Tests that watch a child process through /proc. They poll (a child's exec and exit send no
// signal a test could wait on) with testkit.WaitFor, which imports proctab: hence this external
// test package, where that is no import cycle.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/proctab"
	"github.com/proxyline/proxyline/internal/testkit"
)

// waitBound is how long a child may take to exec or exit: a failure bound for a busy machine.
const waitBound = 5 * time.Second

// startSleep starts `sleep 30` in its own process group with env (nil: ours), killed and reaped
// at the end of the test.
func startSleep(t *testing.T, env []string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "30")
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

// waitExec waits until pid runs sleep: before its exec, a child shows our argv and environment.
func waitExec(t *testing.T, pid int) {
	t.Helper()
	testkit.WaitFor(t, waitBound, fmt.Sprintf("pid %d to exec sleep", pid), func() bool {
		args, err := proctab.Cmdline(pid)
		return err == nil && len(args) == 2 && args[0] == "sleep"
	})
}

func TestSnapshotSeesChild(t *testing.T) {
	t.Parallel()
	pid := startSleep(t, nil).Process.Pid
	r := proctab.NewReader()
	var found proctab.Proc
	var snap []proctab.Proc
	testkit.WaitFor(t, waitBound, fmt.Sprintf("child %d in a snapshot, exec'ed", pid), func() bool {
		var err error
		if snap, err = r.Snapshot(snap); err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(snap, func(p proctab.Proc) bool { return p.PID == pid })
		if i < 0 || snap[i].Comm != "sleep" {
			return false
		}
		found = snap[i]
		return true
	})
	if found.PPID != os.Getpid() || found.PGID != pid || found.StartTime == 0 || found.Threads != 1 {
		t.Fatalf("child = %+v, want ppid %d, pgid %d", found, os.Getpid(), pid)
	}
	one, err := proctab.Stat(pid)
	if err != nil || one.Key() != found.Key() {
		t.Fatalf("Stat(%d) = %+v, %v; want key %+v", pid, one, err, found.Key())
	}
	if len(snap) < 3 {
		t.Fatalf("snapshot has %d processes", len(snap))
	}
}

func TestStatZombieThenGone(t *testing.T) {
	t.Parallel()
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	// Not waited for yet: it must show up as a zombie of ours.
	var zombie proctab.Proc
	testkit.WaitFor(t, waitBound, fmt.Sprintf("pid %d a zombie of ours", pid), func() bool {
		p, err := proctab.Stat(pid)
		zombie = p
		return err == nil && p.State == 'Z' && p.PPID == os.Getpid()
	})
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	p, err := proctab.Stat(pid)
	if (err == nil && p.Key() == zombie.Key()) || (err != nil && !errors.Is(err, os.ErrNotExist)) {
		t.Fatalf("Stat of a reaped pid = %+v, %v; want ErrNotExist", p, err)
	}
}

func TestChildEnrichers(t *testing.T) {
	t.Parallel()
	pid := startSleep(t, []string{"KILLTEST_RUN=enrich-test", "OTHER=1"}).Process.Pid
	waitExec(t, pid)
	for _, tt := range []struct {
		kv   string
		want bool
	}{{"KILLTEST_RUN=enrich-test", true}, {"KILLTEST_RUN=enrich", false}, {"OTHER=1", true}, {"KILLTEST_RUN=enrich-test2", false}} {
		got, err := proctab.HasEnv(pid, tt.kv)
		if err != nil || got != tt.want {
			t.Errorf("HasEnv(%q) = %v, %v; want %v", tt.kv, got, err, tt.want)
		}
	}
	env, err := proctab.Environ(pid)
	if err != nil || !slices.Contains(env, "OTHER=1") {
		t.Errorf("Environ = %v, %v", env, err)
	}
	cg, err := proctab.Cgroup(pid)
	self, err2 := proctab.Cgroup(os.Getpid())
	if err != nil || err2 != nil || cg != self {
		t.Errorf("Cgroup(child) = %q, %v; self %q, %v: want equal", cg, err, self, err2)
	}
	m, err := proctab.MemoryOf(pid)
	if err != nil || m.RSS <= 0 || m.RSSAnon <= 0 || m.RSSAnon > m.RSS {
		t.Errorf("MemoryOf = %+v, %v", m, err)
	}
	if rss, err := proctab.RSSAnon(pid); err != nil || rss != m.RSSAnon && rss <= 0 {
		t.Errorf("RSSAnon = %d, %v", rss, err)
	}
	if uids, err := proctab.StatusUIDs(pid); err != nil || len(uids) != 4 || uids[0] != os.Getuid() || uids[1] != os.Geteuid() {
		t.Errorf("StatusUIDs(child) = %v, %v; want [%d %d ...] of 4", uids, err, os.Getuid(), os.Geteuid())
	}
	testkit.WaitFor(t, waitBound, "the child sleeping in the kernel", func() bool { return proctab.Wchan(pid) != "" })
	if _, err := proctab.HasEnv(1<<30, "X=1"); err == nil {
		t.Error("HasEnv of a missing pid: want error")
	}
}

// TestWithEnv: a child carrying a unique entry is found, exactly once; an entry nobody carries
// finds nothing; the caller itself is never listed, even when it carries the entry.
func TestWithEnv(t *testing.T) {
	t.Parallel()
	kv := fmt.Sprintf("PROCTAB_WITHENV=%d", os.Getpid())
	cmd := startSleep(t, []string{kv})
	var found []proctab.Proc
	testkit.WaitFor(t, waitBound, "one process with "+kv, func() bool {
		var err error
		found, err = proctab.WithEnv(kv)
		return err == nil && len(found) == 1
	})
	if found[0].PID != cmd.Process.Pid {
		t.Errorf("found pid %d, want %d", found[0].PID, cmd.Process.Pid)
	}
	if none, err := proctab.WithEnv(kv + "x"); err != nil || len(none) != 0 {
		t.Errorf("WithEnv of an entry nobody has = %v, %v", none, err)
	}
	if path, ok := os.LookupEnv("PATH"); ok {
		ps, err := proctab.WithEnv("PATH=" + path)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			if p.PID == os.Getpid() {
				t.Error("the caller is listed")
			}
		}
	}
}

// TestOwnChildren: a child is listed while it runs, and no longer once reaped. The kernel's
// children files are exact only for a frozen process table (children of other parallel tests
// come and go meanwhile), so the test polls rather than reads once.
func TestOwnChildren(t *testing.T) {
	t.Parallel()
	cmd := startSleep(t, nil)
	pid := cmd.Process.Pid
	listed := func() bool {
		pids, err := proctab.OwnChildren()
		if err != nil {
			t.Fatal(err)
		}
		return slices.Contains(pids, pid)
	}
	testkit.WaitFor(t, waitBound, fmt.Sprintf("child %d listed", pid), listed)
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	testkit.WaitFor(t, waitBound, fmt.Sprintf("reaped child %d no longer listed", pid), func() bool { return !listed() })
}
