package observe

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/proxyline/proxyline/internal/proctab"
)

// testCookie is unique per test binary, so leftovers of another run are never attributed.
var testCookie = "KILLTEST_RUN=observe-test-" + strconv.Itoa(os.Getpid())

// newObserver starts an observer with a fast interval and stops it at cleanup.
func newObserver(t *testing.T, cfg Config) *Observer {
	t.Helper()
	if cfg.Cookie == "" {
		cfg.Cookie = testCookie
	}
	cfg.Interval = 20 * time.Millisecond
	cfg.EnrichEvery = 100 * time.Millisecond
	cfg.ReapGrace = 300 * time.Millisecond
	o, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := o.Stop(context.Background()); err != nil {
			t.Errorf("stop observer: %v", err)
		}
	})
	return o
}

// startComponent starts a command the way the runner does: own process group, the cookie in
// its environment, declared with Own. Cleanup kills the group and waits.
func startComponent(t *testing.T, o *Observer, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), testCookie)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if o != nil {
		o.Own(cmd.Process.Pid)
	}
	waited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(waited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-waited
		// Members of the group that re-parented to us (we are a subreaper): reap them, targeted
		// at the group, never wait4(-1).
		for {
			var info unix.Siginfo
			err := unix.Waitid(unix.P_PGID, cmd.Process.Pid, &info, unix.WEXITED, nil)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				return
			}
		}
	})
	return cmd
}

// killOrphan kills a leftover process by pid after checking its identity, and reaps it if it
// became our child (we are a subreaper).
func killOrphan(t *testing.T, k Key) {
	t.Helper()
	p, err := proctab.Stat(k.PID)
	if err != nil || p.StartTime != k.StartTime {
		return // already gone
	}
	_ = syscall.Kill(k.PID, syscall.SIGKILL)
	if p.PPID == os.Getpid() {
		var info unix.Siginfo
		if err := unix.Waitid(unix.P_PID, k.PID, &info, unix.WEXITED, nil); err != nil && !errors.Is(err, unix.ECHILD) {
			t.Errorf("reap %d: %v", k.PID, err)
		}
	}
}

// find returns the attributed process matching pred, if any.
func find(ps []Process, pred func(Process) bool) (Process, bool) {
	for _, p := range ps {
		if pred(p) {
			return p, true
		}
	}
	return Process{}, false
}
