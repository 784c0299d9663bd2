package supervise

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/proctab"
)

// deadOwner returns the identity (in our PID namespace) of a process that has exited and been
// reaped: a supervisor that is gone.
func deadOwner(t *testing.T) ownerID {
	t.Helper()
	cmd := exec.Command(fixtureBin(t), "sleep")
	out := newReadyWriter("ready")
	cmd.Stdout = out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	<-out.ready
	pi, err := readProc(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	return ownerID{ns: ownNS(t), pid: pi.pid, start: pi.start}
}

// ownNS is our PID namespace.
func ownNS(t testing.TB) uint64 {
	t.Helper()
	ns, err := proctab.OwnPIDNamespace()
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

// selfOwner is this process's identity as an owner.
func selfOwner(t testing.TB) ownerID {
	t.Helper()
	self, err := readProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	return ownerID{ns: ownNS(t), pid: self.pid, start: self.start}
}

// cookieOf is the cookie of task id owned by o.
func cookieOf(o ownerID, id string) Cookie {
	return Cookie{OwnerPIDNS: o.ns, OwnerPID: o.pid, OwnerStart: o.start, TaskID: id}
}

// startLeftover starts a fixture directly (no supervisor) with the given environment, waits
// until it is ready, and registers its removal by pid.
func startLeftover(t *testing.T, argv0 string, env []string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(fixtureBin(t), "sleep")
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
	do := deadOwner(t)
	pid := do.pid
	dead := cookieOf(do, "sweep-1")
	live := cookieOf(selfOwner(t), "sweep-live")
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
	if !alive(leftover.Process.Pid, dry.Processes[0].StartTime) {
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
// predecessor of the same name (processes, cgroup, task directories), and leaves those of another
// name (another program's tasks) to their own successor or to `proxyline cleanup`.
func TestStartSweepsPredecessor(t *testing.T) {
	do := deadOwner(t)
	leftover := startLeftover(t, "checker", []string{CookieEnv + "=" + cookieOf(do, "successor-0a0b0c-1").String()})
	other := startLeftover(t, "checker", []string{CookieEnv + "=" + cookieOf(do, "another-0a0b0c-1").String()})
	var dir string
	if parent, err := DefaultCgroupParent(); err == nil {
		dir = parent + "/" + ownerDirName("successor-0a0b0c", do)
		if err := os.MkdirAll(dir+"/task-1", 0o755); err != nil {
			dir = "" // no writable cgroup2 here: the process part still runs
		}
	}
	base := t.TempDir()
	deadDir := filepath.Join(base, taskDirName("successor-0a0b0c", do, "0000000a"))
	otherDir := filepath.Join(base, taskDirName("another-0a0b0c", do, "0000000b"))
	for _, d := range []string{deadDir, otherDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	newStarted(t, Config{Name: "successor", Grace: 300 * time.Millisecond, TempDir: base})
	if _, err := os.Stat(deadDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("predecessor's task directory %s not removed: %v", deadDir, err)
	}
	if _, err := os.Stat(otherDir); err != nil {
		t.Errorf("another supervisor's task directory was swept: %v", err)
	}
	if err := syscall.Kill(other.Process.Pid, 0); err != nil {
		t.Errorf("another supervisor's leftover %d was swept: %v", other.Process.Pid, err)
	}
	if err := syscall.Kill(leftover.Process.Pid, 0); err == nil {
		if pi, err := readProc(leftover.Process.Pid); err == nil && pi.state != "Z" {
			t.Errorf("predecessor's leftover %d still runs", leftover.Process.Pid)
		}
	}
	if dir != "" {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("predecessor's cgroup %s not removed: %v", dir, err)
		}
	}
}

// TestMkdirTask: a task directory is private (0700), named for its owner, never an existing
// entry, and survives a sweep while its owner lives.
func TestMkdirTask(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	s := newStarted(t, Config{Name: "taskdir", TempDir: base, SkipStartSweep: true})
	dir, err := s.MkdirTask("")
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(dir)
	if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 || filepath.Dir(dir) != base {
		t.Fatalf("task directory %s: %v, %v; want a 0700 directory in %s", dir, fi.Mode(), err, base)
	}
	o, ok := parseTaskDir(filepath.Base(dir))
	if !ok || o.owner != selfOwner(t) || o.owner.start != s.self.start || o.instance != s.instance {
		t.Fatalf("name %s parses to %+v, %v", filepath.Base(dir), o, ok)
	}
	other, err := s.MkdirTask(base)
	if err != nil || other == dir {
		t.Fatalf("second task directory %s, %v", other, err)
	}
	rep, err := Sweep(context.Background(), SweepConfig{TempDir: base, Owner: os.Getpid()})
	if err != nil || len(rep.Dirs) != 0 {
		t.Fatalf("sweep of a live owner's directories: %+v, %v", rep.Dirs, err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("live owner's directory removed: %v", err)
	}
}

// TestSweepTaskDirs: the directories of a dead owner are listed by a dry run and removed by a
// sweep, contents and all; a planted symbolic link with a dead owner's name is neither followed
// nor removed, nor is a directory of another user, an entry that is not exactly a task
// directory's name, or a live owner's directory.
func TestSweepTaskDirs(t *testing.T) {
	do := deadOwner(t)
	pid, start := do.pid, do.start
	self := selfOwner(t)
	base, victim := t.TempDir(), t.TempDir()
	mk := func(inst string, o ownerID, random string) string {
		p := filepath.Join(base, taskDirName(inst, o, random))
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write := func(p string, n int) {
		if err := os.WriteFile(p, make([]byte, n), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	dead := mk("worker-0a0b0c", do, "00000001")
	write(filepath.Join(dead, "in.txt"), 100)
	if err := os.Mkdir(filepath.Join(dead, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	write(filepath.Join(dead, "sub", "out.txt"), 23)
	// A link inside a dead owner's directory is removed, its target is not.
	write(filepath.Join(victim, "keep"), 7)
	if err := os.Symlink(victim, filepath.Join(dead, "link")); err != nil {
		t.Fatal(err)
	}
	// A planted link named like a dead owner's directory, pointing at the victim.
	planted := filepath.Join(base, taskDirName("worker-0a0b0c", do, "00000002"))
	if err := os.Symlink(victim, planted); err != nil {
		t.Fatal(err)
	}
	foreign := "" // another user's directory: only root can make one, the case is skipped otherwise
	if os.Geteuid() == 0 {
		foreign = mk("worker-0a0b0c", do, "00000003")
		if err := os.Chown(foreign, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	live := mk("worker-0a0b0c", self, "00000004")
	// Our pid with another start time: a dead owner whose pid was reused (by us).
	reused := mk("worker-0a0b0c", ownerID{ns: self.ns, pid: self.pid, start: self.start + 1}, "00000005")
	// The earlier format, without the namespace: never touched.
	oldFormat := filepath.Join(base, TaskDirPrefix+"worker-0a0b0c."+strconv.Itoa(pid)+"."+strconv.FormatUint(start, 10)+".00000007")
	notOurs := []string{
		filepath.Join(base, TaskDirPrefix+"x"),
		filepath.Join(base, TaskDirPrefix+"worker-0a0b0c."+strconv.FormatUint(do.ns, 10)+"."+strconv.Itoa(pid)+".0"+strconv.FormatUint(start, 10)+".00000006"),
		oldFormat,
	}
	for _, p := range notOurs {
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
	}

	dry, err := Sweep(context.Background(), SweepConfig{DryRun: true, TempDir: base, Owner: pid})
	if err != nil {
		t.Fatal(err)
	}
	actions := map[string]StaleDir{}
	for _, d := range dry.Dirs {
		actions[d.Path] = d
	}
	if d := actions[dead]; d.Action != "would remove" || d.Bytes != 123 || d.Owner != do.String() {
		t.Errorf("dry run, dead owner's directory: %+v", d)
	}
	if d := actions[planted]; !strings.HasPrefix(d.Action, "skipped: a symbolic link") {
		t.Errorf("dry run, planted link: %+v", d)
	}
	if d := actions[foreign]; foreign != "" && !strings.HasPrefix(d.Action, "skipped: owned by uid 65534") {
		t.Errorf("dry run, another user's directory: %+v", d)
	}
	entries := 3 // the dead owner's directory, the planted link, another user's directory
	if foreign == "" {
		entries = 2
	}
	if len(dry.Dirs) != entries || dry.Found() != 1 {
		t.Errorf("dry run found %d (%+v), want %d entries, 1 to remove", dry.Found(), dry.Dirs, entries)
	}
	if _, err := os.Stat(filepath.Join(dead, "in.txt")); err != nil {
		t.Fatalf("dry run touched %s: %v", dead, err)
	}

	rep, err := Sweep(context.Background(), SweepConfig{TempDir: base, Owner: pid})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Found() != 1 || rep.Failed != 0 {
		t.Errorf("sweep: %+v", rep.Dirs)
	}
	if _, err := os.Lstat(dead); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dead owner's directory still there: %v", err)
	}
	for _, p := range append([]string{planted, live, filepath.Join(victim, "keep")}, notOurs...) {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s was removed: %v", p, err)
		}
	}
	if _, err := os.Lstat(foreign); foreign != "" && err != nil {
		t.Errorf("another user's directory was removed: %v", err)
	}
	if fi, err := os.Lstat(planted); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("planted link changed: %v, %v", fi, err)
	}
	// The live owner's directory stays; the one naming its pid with another start time goes.
	rep, err = Sweep(context.Background(), SweepConfig{TempDir: base, Owner: self.pid})
	if err != nil || len(rep.Dirs) != 1 || rep.Dirs[0].Path != reused || rep.Dirs[0].Action != "removed" {
		t.Errorf("sweep of a live owner's pid: %+v, %v; want only %s removed", rep.Dirs, err, reused)
	}
	if _, err := os.Lstat(live); err != nil {
		t.Errorf("live owner's directory removed: %v", err)
	}
}

// TestSweepDead: a running supervisor's SweepDead removes what a dead supervisor of its name left
// (task directory, cgroup), keeps its own task directory and another name's, and refuses after
// Stop.
func TestSweepDead(t *testing.T) {
	t.Parallel()
	do := deadOwner(t)
	base := t.TempDir()
	s := newStarted(t, Config{Name: "sweepdead", TempDir: base, SkipStartSweep: true})
	deadDir := filepath.Join(base, taskDirName("sweepdead-0a0b0c", do, "0000000a"))
	otherDir := filepath.Join(base, taskDirName("another-0a0b0c", do, "0000000b"))
	for _, d := range []string{deadDir, otherDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	var deadCgroup string
	if s.Layers().Cgroup {
		deadCgroup = filepath.Join(s.cgroupParent, ownerDirName("sweepdead-0a0b0c", do))
		if err := os.MkdirAll(filepath.Join(deadCgroup, "task-1"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mine, err := s.MkdirTask("")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := s.SweepDead(context.Background())
	if err != nil || rep.Found() == 0 {
		t.Fatalf("SweepDead: %+v, %v", rep, err)
	}
	if _, err := os.Stat(deadDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dead supervisor's task directory: %v", err)
	}
	if deadCgroup != "" {
		if _, err := os.Stat(deadCgroup); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("dead supervisor's cgroup: %v", err)
		}
	}
	for _, d := range []string{mine, otherDir} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s was removed: %v", d, err)
		}
	}
	stopSupervisor(t, s)
	if _, err := s.SweepDead(context.Background()); !errors.Is(err, ErrStopped) {
		t.Errorf("SweepDead after Stop: %v, want ErrStopped", err)
	}
}
