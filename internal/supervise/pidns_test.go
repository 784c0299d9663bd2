package supervise

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/proxyline/proxyline/internal/proctab"
	"github.com/proxyline/proxyline/internal/testkit"
)

// nsInitEnv makes the test binary the init of a new PID and mount namespace (started with
// CLONE_NEWPID|CLONE_NEWNS, like `unshare --pid --fork --mount-proc`): it mounts a /proc of its
// namespace, then, by the value:
//
//	worker        starts the mini-worker of workerEnv as its child (pid 2 there) and waits for it
//	sweep:<json>  runs Sweep itself (pid 1 there) with the JSON SweepConfig and prints the report
//
// or, with "foreign", mounts nothing and runs a dry-run Sweep with the parent's /proc, printing
// "refused: <error>" when it refuses and exiting 1 when it does not.
const nsInitEnv = "SUPERVISE_TEST_NSINIT"

func runNSInit(mode string) int {
	if mode == "foreign" {
		_, err := Sweep(context.Background(), SweepConfig{DryRun: true, TempDir: os.TempDir()})
		if !errors.Is(err, proctab.ErrForeignProc) {
			fmt.Fprintf(os.Stdout, "not refused: %v\n", err)
			return 1
		}
		fmt.Fprintf(os.Stdout, "refused: %v\n", err)
		return 0
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		fmt.Fprintln(os.Stderr, "ns init: make / private:", err)
		return 3
	}
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		fmt.Fprintln(os.Stderr, "ns init: mount /proc:", err)
		return 3
	}
	if raw, ok := strings.CutPrefix(mode, "sweep:"); ok {
		var cfg SweepConfig
		if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
			fmt.Fprintln(os.Stderr, "ns init: sweep config:", err)
			return 3
		}
		rep, err := Sweep(context.Background(), cfg)
		if err != nil {
			fmt.Fprintln(os.Stderr, "ns init: sweep:", err)
		}
		if err := json.NewEncoder(os.Stdout).Encode(rep); err != nil {
			return 3
		}
		return 0
	}
	// PID 1 gets only the signals it handles: pass SIGTERM on to the worker.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	cmd := exec.Command(os.Args[0], os.Args[1:]...)
	cmd.Env = withEnv(os.Environ(), []string{nsInitEnv})
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "ns init: start worker:", err)
		return 3
	}
	go func() {
		for range sigs {
			_ = cmd.Process.Signal(syscall.SIGTERM)
		}
	}()
	_ = cmd.Wait()
	return 0
}

// needPIDNamespaces skips the test where new PID and mount namespaces cannot be made (not root),
// unless CI is set.
func needPIDNamespaces(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("CI needs root for PID namespaces")
		}
		t.Skip("needs root for PID namespaces")
	}
}

// startNS starts the test binary as the init of a new PID and mount namespace (see nsInitEnv),
// with the extra environment; stdout is collected.
func startNS(t *testing.T, mode string, env []string, want string) (*exec.Cmd, *readyWriter, <-chan struct{}) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), nsInitEnv+"="+mode, noRaceSleep), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID | syscall.CLONE_NEWNS, Pdeathsig: syscall.SIGKILL}
	out := newReadyWriter(want)
	cmd.Stdout, cmd.Stderr = out, testWriter{t}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("start a process in new PID and mount namespaces: %v", err)
	}
	waited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(waited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // the namespace's init: the kernel kills everything in it
		<-waited
	})
	return cmd, out, waited
}

// nsWorker is a mini-worker running a fixture in a PID namespace of its own.
type nsWorker struct {
	cmd       *exec.Cmd // the namespace's init
	waited    <-chan struct{}
	owner     string // <pidns>:<pid>:<start> of its supervisor
	cgroupDir string // "" without the cgroup layer
	taskDir   string
	cookie    string // the cookie of its task (its processes are found by it)
}

// startNSWorker starts a mini-worker named name in new PID and mount namespaces, with a task
// directory in base, running the fixture "sleep", and waits until the fixture runs.
func startNSWorker(t *testing.T, name, base string) *nsWorker {
	t.Helper()
	spec, err := json.Marshal(miniWorkerSpec{Name: name, TempDir: base, Path: fixtureBin(t), Args: []string{"sleep"}})
	if err != nil {
		t.Fatal(err)
	}
	cmd, out, waited := startNS(t, "worker", []string{workerEnv + "=" + string(spec)}, "ready")
	select {
	case <-out.ready:
	case <-waited:
		t.Fatalf("namespaced worker exited before its task was ready: %q", out.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("namespaced worker's task not ready: %q", out.String())
	}
	w := &nsWorker{cmd: cmd, waited: waited}
	for line := range strings.SplitSeq(out.String(), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok {
			switch k {
			case "owner":
				w.owner = v
			case "cgroupdir":
				w.cgroupDir = v
			case "taskdir":
				w.taskDir = v
			}
		}
	}
	if w.owner == "" || w.taskDir == "" {
		t.Fatalf("namespaced worker did not say its owner and task directory: %q", out.String())
	}
	if ns := ownNS(t); strings.HasPrefix(w.owner, fmt.Sprint(ns)+":") {
		t.Fatalf("namespaced worker's owner %s is in our PID namespace %d", w.owner, ns)
	}
	w.cookie = w.owner + ":"
	if len(w.tasks(t)) == 0 {
		t.Fatalf("no process carries the cookie of owner %s: the test could not fail", w.owner)
	}
	return w
}

// tasks lists the live processes carrying the worker's cookie.
func (w *nsWorker) tasks(t *testing.T) []int {
	t.Helper()
	all, err := proctab.PIDs()
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, pid := range all {
		if c := procCookie(pid); strings.HasPrefix(c, w.cookie) {
			if st, err := readProc(pid); err == nil && st.state != "Z" {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// untouched fails the test unless the worker's task processes, cgroup and task directory are all
// still there.
func (w *nsWorker) untouched(t *testing.T, after string) {
	t.Helper()
	if len(w.tasks(t)) == 0 {
		t.Errorf("after %s: the live namespaced worker's task processes are gone", after)
	}
	if _, err := os.Stat(w.taskDir); err != nil {
		t.Errorf("after %s: the live namespaced worker's task directory: %v", after, err)
	}
	if w.cgroupDir != "" {
		if _, err := os.Stat(w.cgroupDir); err != nil {
			t.Errorf("after %s: the live namespaced worker's cgroup: %v", after, err)
		}
	}
}

// sweepInNS runs Sweep with cfg as PID 1 of new PID and mount namespaces (siblings of any other
// made by startNS) and returns its report.
func sweepInNS(t *testing.T, cfg SweepConfig) SweepReport {
	t.Helper()
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, out, waited := startNS(t, "sweep:"+string(raw), nil, "{")
	select {
	case <-waited:
	case <-time.After(60 * time.Second):
		t.Fatalf("sweep in a sibling namespace did not end: %q", out.String())
	}
	var rep SweepReport
	if err := json.Unmarshal([]byte(out.String()), &rep); err != nil {
		t.Fatalf("sweep in a sibling namespace: %v: %q", err, out.String())
	}
	return rep
}

// skippedFor fails the test unless rep lists the worker's cgroup (when it has one), task
// directory and task processes as skipped, and nothing of it otherwise.
func skippedFor(t *testing.T, rep SweepReport, w *nsWorker, who string, sibling bool) {
	t.Helper()
	var procs, dirs, cgroups int
	for _, p := range rep.Processes {
		if strings.HasPrefix(p.Cookie, w.cookie) {
			procs++
			if !strings.HasPrefix(p.Action, "skipped: owner in another PID namespace") {
				t.Errorf("%s: task process %+v not skipped", who, p)
			}
		}
	}
	for _, d := range rep.Dirs {
		if d.Path == w.taskDir {
			dirs++
			if !strings.HasPrefix(d.Action, "skipped: owner in another PID namespace") {
				t.Errorf("%s: task directory %+v not skipped", who, d)
			}
		}
	}
	for _, c := range rep.Cgroups {
		if c.Path == w.cgroupDir {
			cgroups++
			if !strings.HasPrefix(c.Action, "skipped: owner in another PID namespace") {
				t.Errorf("%s: cgroup %+v not skipped", who, c)
			}
		}
	}
	// A sibling namespace cannot see the worker's processes at all: none to list.
	if (procs == 0 && !sibling) || dirs != 1 || (w.cgroupDir != "" && cgroups != 1) {
		t.Errorf("%s: report lists %d processes, %d directories, %d cgroups of the worker as skipped: %+v", who, procs, dirs, cgroups, rep)
	}
}

// TestSweepAcrossPIDNamespaces: a live supervisor in a child PID namespace keeps its task
// processes, cgroup and task directory through a sweep from the parent namespace and one from a
// sibling namespace, both of which report them as skipped; once its namespace is dead (its init
// SIGKILLed), a sweep from the initial namespace removes its cgroup and task directory.
func TestSweepAcrossPIDNamespaces(t *testing.T) {
	needPIDNamespaces(t)
	t.Parallel()
	base := t.TempDir()
	const name = "pidnsworker"
	w := startNSWorker(t, name, base)

	rep, err := Sweep(context.Background(), SweepConfig{TempDir: base, Name: name, Grace: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("sweep from the parent namespace: %v", err)
	}
	w.untouched(t, "a sweep from the parent namespace")
	if rep.Found() != 0 {
		t.Errorf("sweep from the parent namespace found %d leftovers: %+v", rep.Found(), rep)
	}
	skippedFor(t, rep, w, "sweep from the parent namespace", false)

	rep = sweepInNS(t, SweepConfig{TempDir: base, Name: name, Grace: 100 * time.Millisecond})
	w.untouched(t, "a sweep from a sibling namespace")
	if rep.Found() != 0 {
		t.Errorf("sweep from a sibling namespace found %d leftovers: %+v", rep.Found(), rep)
	}
	skippedFor(t, rep, w, "sweep from a sibling namespace", true)

	if ownNS(t) != proctab.InitialPIDNamespace {
		t.Skip("the rest needs the initial PID namespace (this test runs in a container's)")
	}
	_ = w.cmd.Process.Kill() // the namespace's init: the kernel kills the whole namespace
	<-w.waited
	testkit.WaitFor(t, 30*time.Second, "the dead namespace's processes gone", func() bool { return len(w.tasks(t)) == 0 })
	testkit.WaitFor(t, 30*time.Second, "the dead namespace's pid namespace gone", func() bool {
		live, _, err := proctab.PIDNamespaces(ownNS(t))
		return err == nil && !live[nsOfOwner(t, w.owner)]
	})
	rep, err = Sweep(context.Background(), SweepConfig{TempDir: base, Name: name, Grace: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("sweep of the dead namespace: %v", err)
	}
	if _, err := os.Stat(w.taskDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the dead namespace's task directory is still there: %v (%+v)", err, rep.Dirs)
	}
	if w.cgroupDir != "" {
		if _, err := os.Stat(w.cgroupDir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the dead namespace's cgroup is still there: %v (%+v)", err, rep.Cgroups)
		}
	}
}

// TestSweepFromChildNamespaceSparesRunningSupervisor reproduces the CI failure of
// TestKillExecWorker: a worker in a PID namespace of its own (with a /proc of that namespace)
// ran its start-up sweep while a supervisor of the same name ran tasks in the parent namespace,
// took it for dead (its pid is not in that /proc), and killed and removed its cgroup: the
// supervisor's next task failed with "create task cgroup ...: no such file or directory". Here
// the supervisor runs a task, a sweep of its name runs in a child namespace, and the supervisor
// must keep its task, its cgroup and its task directory, and start the next task.
func TestSweepFromChildNamespaceSparesRunningSupervisor(t *testing.T) {
	needPIDNamespaces(t)
	t.Parallel()
	base := t.TempDir()
	s := newStarted(t, Config{Name: "nsregress", TempDir: base, SkipStartSweep: true, Grace: 200 * time.Millisecond})
	dir, err := s.MkdirTask("")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := newReadyWriter("ready")
	done := make(chan error, 1)
	go func() {
		_, err := s.Run(ctx, Spec{Path: fixtureBin(t), Args: []string{"sleep"}, Stdout: ready})
		done <- err
	}()
	select {
	case <-ready.ready:
	case err := <-done:
		t.Fatalf("task ended before it was ready: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("task not ready")
	}

	rep := sweepInNS(t, SweepConfig{TempDir: base, Name: "nsregress", Grace: 100 * time.Millisecond})
	if rep.Found() != 0 {
		t.Errorf("sweep from a child namespace found %d leftovers of a live supervisor: %+v", rep.Found(), rep)
	}
	select {
	case err := <-done:
		t.Fatalf("the running task was ended by the sweep: %v", err)
	default:
	}
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("the live supervisor's task directory: %v", err)
	}
	if s.ownerDir != "" {
		if _, err := os.Stat(s.ownerDir); err != nil {
			t.Errorf("the live supervisor's cgroup: %v", err)
		}
	}
	if _, err := s.Run(context.Background(), Spec{Path: "/bin/true"}); err != nil {
		t.Errorf("next task after the sweep: %v", err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("the long task: %v, want it cancelled by the test", err)
	}
}

// TestSweepRefusesForeignProc: a sweep whose /proc belongs to another PID namespace (a new PID
// namespace without its own /proc mount: /proc/self is not our pid) refuses to judge anything.
func TestSweepRefusesForeignProc(t *testing.T) {
	needPIDNamespaces(t)
	t.Parallel()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), nsInitEnv+"=foreign", noRaceSleep)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "refused: sweep refused: /proc belongs to another PID namespace") {
		t.Fatalf("sweep with a /proc of another namespace: %v\n%s", err, out)
	}
}

// nsOfOwner is the namespace part of an owner string.
func nsOfOwner(t *testing.T, owner string) uint64 {
	t.Helper()
	var ns uint64
	if _, err := fmt.Sscanf(strings.SplitN(owner, ":", 2)[0], "%d", &ns); err != nil {
		t.Fatalf("owner %q: %v", owner, err)
	}
	return ns
}
