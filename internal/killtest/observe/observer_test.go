package observe

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/proxyline/proxyline/internal/lifecycle"
	"github.com/proxyline/proxyline/internal/lifecycle/lifecycletest"
	"github.com/proxyline/proxyline/internal/testkit"
)

// Tests that start processes do not run in parallel: the subreaper flag and re-parenting are
// process-wide, so two observers in one process would see each other's orphans.

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"minimal", Config{Cookie: "KILLTEST_RUN=1"}, true},
		{"empty value", Config{Cookie: "K="}, true},
		{"no cookie", Config{}, false},
		{"no equals", Config{Cookie: "KILLTEST_RUN"}, false},
		{"no key", Config{Cookie: "=1"}, false},
		{"negative interval", Config{Cookie: "K=1", Interval: -1}, false},
		{"relative cgroup", Config{Cookie: "K=1", CgroupDir: "x/y"}, false},
		{"not a cgroup", Config{Cookie: "K=1", CgroupDir: os.TempDir()}, false},
	}
	for _, tt := range tests {
		if err := tt.cfg.Validate(); (err == nil) != tt.ok {
			t.Errorf("%s: Validate() = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

// TestLifecycle: the observer's lifecycle (docs/lifecycle.md) with real processes. Serving: a
// process started with the cookie after Start, whose context has ended by then, is attributed by
// the sampling loop (no Refresh). The observer has nothing to drain: no cut test.
func TestLifecycle(t *testing.T) {
	lifecycletest.Run(t, lifecycletest.Subject[*Observer]{
		New: func(t *testing.T) *Observer {
			o, err := New(Config{Cookie: testCookie, Interval: 20 * time.Millisecond, EnrichEvery: 100 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			return o
		},
		Serving: func(t *testing.T, o *Observer) {
			cmd := startComponent(t, nil, "sleep", "600")
			testkit.WaitFor(t, time.Minute, "the sampling loop attributing a new process", func() bool {
				_, ok := find(o.Alive(), func(p Process) bool { return p.PID == cmd.Process.Pid })
				return ok
			})
		},
	})
	var flag int32
	if err := unix.Prctl(unix.PR_GET_CHILD_SUBREAPER, uintptrOf(&flag), 0, 0, 0); err != nil || flag != 0 {
		t.Errorf("after every Stop: subreaper flag %d (%v), want restored to 0", flag, err)
	}
}

func TestStartStop(t *testing.T) {
	o, err := New(Config{Cookie: testCookie})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Stop(context.Background()); err != nil { // before Start: nothing to do
		t.Errorf("Stop before Start = %v", err)
	}
	o, _ = New(Config{Cookie: testCookie})
	if err := o.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := o.Start(t.Context()); !errors.Is(err, lifecycle.ErrStarted) {
		t.Errorf("second Start = %v, want lifecycle.ErrStarted", err)
	}
	caps := o.Capabilities()
	var flag int32
	if err := unix.Prctl(unix.PR_GET_CHILD_SUBREAPER, uintptrOf(&flag), 0, 0, 0); err != nil || (flag == 1) != caps.Subreaper {
		t.Errorf("subreaper flag %d (%v), capabilities %+v", flag, err, caps)
	}
	for range 2 {
		if err := o.Stop(context.Background()); err != nil {
			t.Errorf("Stop = %v", err)
		}
	}
	if err := unix.Prctl(unix.PR_GET_CHILD_SUBREAPER, uintptrOf(&flag), 0, 0, 0); err != nil || flag != 0 {
		t.Errorf("after Stop: subreaper flag %d (%v), want restored to 0", flag, err)
	}
	if tl := o.Timeline(); len(tl.Samples) == 0 || tl.End.IsZero() {
		t.Errorf("timeline after stop: %d samples, end %v", len(tl.Samples), tl.End)
	}
}

// TestReparentedOrphan: `sh -c 'sleep 30 & exit'` leaves sleep behind; the observer sees it
// re-parented to the harness, with the cookie.
func TestReparentedOrphan(t *testing.T) {
	o := newObserver(t, Config{})
	cmd := startComponent(t, o, "sh", "-c", "sleep 30 & echo $!; exit 0")
	_ = cmd
	var orphan Process
	testkit.WaitFor(t, 5*time.Second, "sleep re-parented to the harness", func() bool {
		p, ok := find(o.Alive(), func(p Process) bool { return p.Comm == "sleep" && p.PPID == os.Getpid() })
		orphan = p
		return ok && p.Reparented
	})
	t.Cleanup(func() { killOrphan(t, orphan.Key) })
	if !orphan.Cookie || orphan.Own || orphan.ReparentedAt.IsZero() {
		t.Errorf("orphan = %+v: want cookie, not own, ReparentedAt set", orphan)
	}
	if orphan.Attribution != ByCookie {
		t.Errorf("attribution = %s, want cookie", orphan.Attribution)
	}
	// The component itself is Own()ed, never re-parented.
	sh, ok := find(o.Processes(), func(p Process) bool { return p.PID == cmd.Process.Pid })
	if !ok || !sh.Own || sh.Reparented || sh.Attribution != ByOwn {
		t.Errorf("component = %+v, %v: want own, not re-parented", sh, ok)
	}
	// Killed, it becomes our zombie: the observer reaps it and records that it did.
	if err := syscall.Kill(orphan.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 5*time.Second, "orphan reaped by the harness", func() bool {
		p, ok := find(o.Processes(), func(p Process) bool { return p.Key == orphan.Key })
		return ok && p.Exited && p.ReapedByHarness
	})
	if _, err := os.Stat(filepath.Join("/proc", itoa(orphan.PID))); err == nil {
		if p, _ := statOf(orphan.PID); p.StartTime == orphan.StartTime {
			t.Errorf("orphan %d still in /proc after reaping", orphan.PID)
		}
	}
}

// TestSetsidEscapeeByCookie: a double-forked, setsid'd process started by a parent that does
// not carry the cookie and is not declared is attributed by its cookie alone.
func TestSetsidEscapeeByCookie(t *testing.T) {
	o := newObserver(t, Config{})
	// The outer sh has no cookie and is not declared: only the setsid'd grandchild carries it.
	// sleep 37: no other test's sleep has that argument (tests of this package run in parallel
	// and share the harness).
	cmd := exec.Command("sh", "-c", "setsid env "+testCookie+" sh -c 'sleep 37 & exit 0' & wait; exit 0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	var esc Process
	// A sample taken while the inner sh still lived shows sleep under it: wait for one taken
	// after cmd.Run returned (by then the inner sh has exited and sleep is the harness's).
	testkit.WaitFor(t, 5*time.Second, "escapee seen re-parented", func() bool {
		p, ok := find(o.Alive(), func(p Process) bool { return p.Comm == "sleep" && strings.Join(p.Cmdline, " ") == "sleep 37" })
		esc = p
		return ok && p.PPID == os.Getpid()
	})
	t.Cleanup(func() { killOrphan(t, esc.Key) })
	if esc.Attribution != ByCookie || !esc.Cookie {
		t.Errorf("escapee attribution %s cookie %v, want by cookie", esc.Attribution, esc.Cookie)
	}
	if esc.SID == os.Getpid() || esc.SID == cmd.Process.Pid {
		t.Errorf("escapee sid %d: want a new session", esc.SID)
	}
	if esc.PPID != os.Getpid() || !esc.Reparented {
		t.Errorf("escapee ppid %d reparented %v: want re-parented to the harness %d", esc.PPID, esc.Reparented, os.Getpid())
	}
}

// TestNoCookieNotAttributed: a process without the cookie, not started by the run, is ignored.
func TestNoCookieNotAttributed(t *testing.T) {
	o := newObserver(t, Config{})
	cmd := exec.Command("sleep", "30")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	// A sibling with the cookie, as a witness that sampling happened after both existed.
	w := startComponent(t, o, "sleep", "30")
	testkit.WaitFor(t, 5*time.Second, "witness seen", func() bool {
		_, ok := find(o.Alive(), func(p Process) bool { return p.PID == w.Process.Pid && p.Comm == "sleep" })
		return ok
	})
	if err := o.Refresh(); err != nil {
		t.Fatal(err)
	}
	if p, ok := find(o.Alive(), func(p Process) bool { return p.PID == cmd.Process.Pid }); ok {
		t.Fatalf("process without cookie attributed: %+v", p)
	}
	// Still not attributed after ReapGrace: a cookie-less child of the harness is a helper.
	since := time.Now()
	testkit.WaitFor(t, 5*time.Second, "samples past ReapGrace", func() bool {
		s := o.Timeline().Samples
		return len(s) > 0 && s[len(s)-1].At.Sub(since) > 2*o.cfg.ReapGrace
	})
	if p, ok := find(o.Processes(), func(p Process) bool { return p.PID == cmd.Process.Pid }); ok {
		t.Fatalf("harness helper attributed after ReapGrace: %+v", p)
	}
}

// TestStuckHelperZombieReaped: a child of the harness nobody waits for is reaped after
// ReapGrace, and recorded as reaped by the harness.
func TestStuckHelperZombieReaped(t *testing.T) {
	o := newObserver(t, Config{})
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	testkit.WaitFor(t, 5*time.Second, "stuck zombie reaped by the observer", func() bool {
		for _, z := range o.Zombies() {
			if z.PID == pid && z.ReapedByHarness && z.ParentIsHarness {
				return true
			}
		}
		return false
	})
	if err := cmd.Wait(); err == nil {
		t.Fatal("Wait after the observer reaped the child: want an error (no child)")
	}
}

// TestZombieMaker: `sh -c 'sleep 0 & exec sleep 30'`: the exec'ed sleep never waits for its
// child, which stays a zombie; the zombie is recorded with its parent.
func TestZombieMaker(t *testing.T) {
	o := newObserver(t, Config{})
	cmd := startComponent(t, o, "sh", "-c", "true & exec sleep 30")
	var z Zombie
	testkit.WaitFor(t, 5*time.Second, "zombie recorded", func() bool {
		for _, zz := range o.Zombies() {
			if zz.Parent.PID == cmd.Process.Pid && zz.Until.Sub(zz.Since) >= 200*time.Millisecond {
				z = zz
				return true
			}
		}
		return false
	})
	if z.ParentIsHarness || z.Reaped || !slices.Contains(z.ParentCmdline, "30") {
		t.Errorf("zombie = %+v: want parent sleep 30, not reaped", z)
	}
	if st := o.Timeline().Samples; !slices.ContainsFunc(st, func(s Sample) bool { return s.Zombies > 0 }) {
		t.Error("timeline never counted the zombie")
	}
}

// TestOwnNeverReaped: the runner's own children are left to exec.Cmd.Wait even when they
// stay zombies longer than ReapGrace.
func TestOwnNeverReaped(t *testing.T) {
	o := newObserver(t, Config{})
	cmd := exec.Command("true")
	cmd.Env = append(os.Environ(), testCookie)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	o.Own(cmd.Process.Pid)
	testkit.WaitFor(t, 5*time.Second, "own child a zombie for longer than ReapGrace", func() bool {
		for _, z := range o.Zombies() {
			if z.PID == cmd.Process.Pid && z.Until.Sub(z.Since) > 2*o.cfg.ReapGrace {
				return true
			}
		}
		return false
	})
	if err := cmd.Wait(); err != nil {
		t.Fatalf("Wait of an own child: %v (the observer must not reap it)", err)
	}
}

// TestMarkRecordsFDs: marks carry each attributed process's fds and memory.
func TestMarkRecordsFDs(t *testing.T) {
	o := newObserver(t, Config{})
	cmd := startComponent(t, o, "sleep", "30")
	testkit.WaitFor(t, 5*time.Second, "component exec'ed", func() bool {
		p, ok := find(o.Alive(), func(p Process) bool { return p.PID == cmd.Process.Pid })
		return ok && p.Comm == "sleep"
	})
	m := o.Mark("cycle-1")
	i := slices.IndexFunc(m.Procs, func(p MarkProc) bool { return p.PID == cmd.Process.Pid })
	if i < 0 {
		t.Fatalf("mark has no entry for the component: %+v", m)
	}
	mp := m.Procs[i]
	if len(mp.FDs) < 3 || mp.RSSAnon <= 0 || mp.TroughRSSAnon <= 0 || mp.TroughRSSAnon > mp.RSSAnon {
		t.Errorf("mark entry = %+v: want fds 0-2 and memory", mp)
	}
	if ms := o.Marks(); len(ms) != 1 || ms[0].Name != "cycle-1" {
		t.Errorf("Marks() = %v", ms)
	}
	if u := o.Timeline().Usage[Key{PID: mp.PID, StartTime: mp.StartTime}]; len(u) == 0 || u[len(u)-1].FDs < 3 {
		t.Errorf("usage series = %v", u)
	}
}

// TestCgroupAttribution: a process born in the run cgroup, without cookie, is attributed by
// cgroup.
func TestCgroupAttribution(t *testing.T) {
	root := "/sys/fs/cgroup/unified"
	if _, err := os.Stat(filepath.Join(root, "cgroup.procs")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("no cgroup2 at %s: %v", root, err)
		}
		t.Skipf("no cgroup2 at %s", root)
	}
	dir := filepath.Join(root, "killtest-observe-test-"+itoa(os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("cannot create a cgroup: %v", err)
	}
	t.Cleanup(func() {
		_ = os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0)
		testkit.WaitFor(t, 5*time.Second, "cgroup removable", func() bool { return os.Remove(dir) == nil })
	})
	o := newObserver(t, Config{CgroupDir: dir})
	if !o.Capabilities().Cgroup {
		t.Fatalf("capabilities %+v: want cgroup", o.Capabilities())
	}
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	cmd := exec.Command("sleep", "30")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, UseCgroupFD: true, CgroupFD: fd}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var p Process
	testkit.WaitFor(t, 5*time.Second, "attributed by cgroup", func() bool {
		var ok bool
		p, ok = find(o.Alive(), func(p Process) bool { return p.PID == cmd.Process.Pid })
		return ok && p.Cgroup != ""
	})
	if p.Attribution != ByCgroup || !p.InCgroup || p.Cookie || !strings.HasSuffix(p.Cgroup, filepath.Base(dir)) {
		t.Errorf("process = %+v: want attributed by cgroup %s", p, dir)
	}
}

func TestSeriesBounded(t *testing.T) {
	t.Parallel()
	s := newSeries[int](8)
	for i := range 1000 {
		s.add(i)
	}
	pts := s.snapshot()
	if len(pts) >= 8 || len(pts) < 4 || pts[0] != 0 || !slices.IsSorted(pts) {
		t.Fatalf("series = %v: want < 8 increasing points from 0", pts)
	}
	if last := pts[len(pts)-1]; last < 1000-2*s.stride {
		t.Fatalf("last point %d, stride %d: the series stopped following", last, s.stride)
	}
}

// TestCookieAfterExecs: `env KILLTEST_RUN=... sleep 30` started by a cookie-less parent gets
// the cookie only at its second exec; the observer re-reads the environment after each exec.
func TestCookieAfterExecs(t *testing.T) {
	o := newObserver(t, Config{})
	cmd := exec.Command("env", testCookie, "sleep", "30")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	testkit.WaitFor(t, 5*time.Second, "attributed by cookie after exec", func() bool {
		p, ok := find(o.Alive(), func(p Process) bool { return p.PID == cmd.Process.Pid })
		return ok && p.Attribution == ByCookie && p.Comm == "sleep"
	})
}

// TestSampleGapRecorded: a stretch in which the process table was not read (here the sampling
// loop held off for 600 ms, as a stalled machine does) is recorded as the longest gap, so the
// orphan check can say what it could not have seen; after the stop phase began, gaps no longer
// count.
func TestSampleGapRecorded(t *testing.T) {
	o := newObserver(t, Config{Interval: 20 * time.Millisecond})
	samples := func() int { return len(o.Timeline().Samples) }
	n := samples()
	testkit.WaitFor(t, time.Minute, "two samples", func() bool { return samples() >= n+2 })
	const hold = 600 * time.Millisecond
	o.mu.Lock()
	held := time.Now()
	for time.Since(held) < hold { // the loop cannot sample while the lock is held
		time.Sleep(10 * time.Millisecond)
	}
	o.mu.Unlock()
	n = samples()
	testkit.WaitFor(t, time.Minute, "a sample after the stall", func() bool { return samples() > n })
	caps := o.Capabilities()
	if caps.MaxSampleGap < hold || caps.MaxSampleGapAt.After(held) {
		t.Fatalf("longest gap %v from %v, want at least %v from before %v", caps.MaxSampleGap, caps.MaxSampleGapAt, hold, held)
	}
	o.BeginStop()
	o.mu.Lock()
	time.Sleep(2 * hold) // a stall in the stop phase: not the run's blind spot
	o.mu.Unlock()
	if err := o.Refresh(); err != nil {
		t.Fatal(err)
	}
	if got := o.Capabilities().MaxSampleGap; got >= 2*hold {
		t.Fatalf("a gap in the stop phase counted: %v", got)
	}
}
