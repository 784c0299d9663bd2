package supervise

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/proxyline/proxyline/internal/proctab"
)

// The task init: PID 1 of a task's PID namespace, this binary re-executed with initEnv set.
// It is a main of its own, so it may install signal handlers (house rule: signals only at the
// top). It starts the real command, forwards SIGTERM/SIGINT/SIGHUP to every process of the
// namespace (and SIGCONT, so stopped ones see them), reaps everything that ends (as PID 1 it is
// the only possible parent of orphans there, so wait4(-1) steals from no one), reports the
// command's status on fd 3, and exits once it has no children left. It was started with
// Pdeathsig=SIGKILL: if the worker dies, it dies, and the kernel kills the whole namespace.
// With a Spec.Timeout it also enforces the task's hard deadline itself (deadlineEnv), so a
// stopped or frozen worker cannot make a task run forever (HYGIENE trap 23): at the deadline
// SIGTERM+SIGCONT to the namespace, after the grace SIGKILL, report flagged "deadline", exit 124.

// noRaceSleep stops a race-detector build of the init (our test binaries) from sleeping 1 s at
// exit (GORACE atexit_sleep_ms, default 1000), which would add a second to every task in tests.
// It is meaningless to other builds. The init removes it again before starting the command
// unless the task's own environment had GORACE ("run-keep-gorace").
const noRaceSleep = "GORACE=atexit_sleep_ms=0"

const (
	initEnv      = "PROXYLINE_SUPERVISE_INIT" // "run", "run-keep-gorace" or "probe"
	initArg0     = "proxyline-init"
	probeReply   = "proxyline-init ok pid="
	reportPrefix = "exit "
	// deadlineEnv carries the task's hard deadline to the init: "<after-ms> <grace-ms>", see
	// initDeadline. Set only with a Spec.Timeout; removed before the command starts.
	deadlineEnv = "PROXYLINE_SUPERVISE_DEADLINE"
	// deadlineFlag marks a report of a command the init ended at its own deadline.
	deadlineFlag = "deadline"
	// taskDirEnv hands the init the task directory (Spec.TaskDir) it removes when the
	// supervisor dies, which it learns from end-of-file on its lifeline, fd 4. Removed before the
	// command starts.
	taskDirEnv = "PROXYLINE_SUPERVISE_TASKDIR"
	// lifelineFD is the init's end of the pipe only the supervisor holds open.
	lifelineFD = 4
	// initDeadlineExit is the init's own exit status when its deadline fired (timeout(1)'s
	// 124). The report on fd 3 is what the supervisor trusts; this status is for people and
	// for a supervisor that lost the report.
	initDeadlineExit = 124
	// deadlineMargin puts the init's deadline after the supervisor's own timeout handling
	// (SIGTERM at Timeout, SIGKILL at Timeout+Grace), so the backstop never acts while the
	// supervisor is alive and running. Should the two meet anyway (a very slow supervisor),
	// both only signal the same namespace and the result is a timeout either way.
	deadlineMargin = time.Second
	// maxDeadlineMS bounds what parseInitDeadline accepts (about 34 years; no overflow).
	maxDeadlineMS = 1 << 40
)

// MaybeInit runs the task init and returns its exit code with ok=true when this process was
// started as one (initEnv is set); otherwise it returns at once with ok=false. Call it as the
// first statement of main, and of TestMain in test binaries that use a Supervisor, and exit
// with the code when ok:
//
//	if code, ok := supervise.MaybeInit(); ok {
//		os.Exit(code)
//	}
func MaybeInit() (code int, ok bool) {
	mode, set := os.LookupEnv(initEnv)
	if !set {
		return 0, false
	}
	os.Unsetenv(initEnv)
	switch mode {
	case "probe":
		fmt.Fprintf(os.Stdout, "%s%d\n", probeReply, os.Getpid())
		return 0, true
	case "run", "run-keep-gorace":
		if mode == "run" {
			os.Unsetenv("GORACE")
		}
		var dl initDeadline
		if raw, set := os.LookupEnv(deadlineEnv); set {
			os.Unsetenv(deadlineEnv)
			var err error
			if dl, err = parseInitDeadline(raw); err != nil {
				// Refuse to run a task whose deadline cannot be enforced.
				fmt.Fprintf(os.Stderr, "%s: %v\n", initArg0, err)
				return 127, true
			}
		}
		taskDir, hasDir := os.LookupEnv(taskDirEnv)
		os.Unsetenv(taskDirEnv)
		if hasDir && !validTaskDirPath(taskDir) {
			fmt.Fprintf(os.Stderr, "%s: %s %q is not a task directory\n", initArg0, taskDirEnv, taskDir)
			return 127, true
		}
		return runInit(os.Args, dl, taskDir), true
	default:
		fmt.Fprintf(os.Stderr, "%s: unknown mode %q in %s\n", initArg0, mode, initEnv)
		return 127, true
	}
}

// initDeadline is the hard deadline the supervisor hands the init in deadlineEnv: after (from
// the init's start; > 0) it sends SIGTERM+SIGCONT to everything in its namespace, after a further
// grace (>= 0) SIGKILL. Wire format "<after-ms> <grace-ms>", canonical decimals. The zero value
// means no deadline.
type initDeadline struct {
	after, grace time.Duration
}

func (d initDeadline) String() string {
	return fmt.Sprintf("%d %d", d.after.Milliseconds(), d.grace.Milliseconds())
}

// parseInitDeadline parses deadlineEnv's value.
func parseInitDeadline(s string) (initDeadline, error) {
	f := strings.Split(s, " ")
	if len(f) != 2 {
		return initDeadline{}, fmt.Errorf("%s %q: want \"<after-ms> <grace-ms>\"", deadlineEnv, s)
	}
	var ms [2]int64
	for i, v := range f {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || strconv.FormatInt(n, 10) != v || n < 0 || n > maxDeadlineMS {
			return initDeadline{}, fmt.Errorf("%s %q: bad number %q", deadlineEnv, s, v)
		}
		ms[i] = n
	}
	if ms[0] == 0 {
		return initDeadline{}, fmt.Errorf("%s %q: deadline must be positive", deadlineEnv, s)
	}
	return initDeadline{after: time.Duration(ms[0]) * time.Millisecond, grace: time.Duration(ms[1]) * time.Millisecond}, nil
}

// initStatus is what the init reports about the command on fd 3: "exit <code> <signal>\n",
// signal 0 when it exited normally, or "exit <code> <signal> deadline\n" when the init's own
// deadline had fired before the command ended (the supervisor reports Result.TimedOut).
type initStatus struct {
	code     int
	signal   int
	deadline bool
}

func (s initStatus) String() string {
	if s.deadline {
		return fmt.Sprintf("%s%d %d %s\n", reportPrefix, s.code, s.signal, deadlineFlag)
	}
	return fmt.Sprintf("%s%d %d\n", reportPrefix, s.code, s.signal)
}

// parseInitStatus parses one report line.
func parseInitStatus(line string) (initStatus, error) {
	rest, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), reportPrefix)
	if !ok {
		return initStatus{}, fmt.Errorf("init report %q: no %q prefix", line, reportPrefix)
	}
	f := strings.Fields(rest)
	deadline := len(f) == 3 && f[2] == deadlineFlag
	if len(f) != 2 && !deadline {
		return initStatus{}, fmt.Errorf("init report %q: want 2 fields and an optional %q", line, deadlineFlag)
	}
	code, err1 := strconv.Atoi(f[0])
	sig, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || code < -1 || code > 255 || sig < 0 || sig > 64 {
		return initStatus{}, fmt.Errorf("init report %q: bad numbers", line)
	}
	return initStatus{code: code, signal: sig, deadline: deadline}, nil
}

func runInit(args []string, dl initDeadline, taskDir string) int {
	if len(args) < 2 {
		fmt.Fprintf(os.Stderr, "%s: no command\n", initArg0)
		return 127
	}
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGCHLD)
	// Decided once, before anything else runs in the namespace: may kill(-1) be used at all?
	in := &initProc{nsInit: isNamespaceInit(), report: os.NewFile(3, "init-report"), taskDir: taskDir}
	if _, err := unix.FcntlInt(3, unix.F_GETFD, 0); err != nil {
		in.report = nil
	}
	var orphaned <-chan struct{}
	if taskDir != "" {
		orphaned = watchLifeline()
	}
	child, err := forkCommand(args[1], args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: start %s: %v\n", initArg0, args[1], err)
		in.writeReport(initStatus{code: 127})
		return 127
	}
	in.child = child
	return in.serve(sigs, dl, orphaned)
}

// watchLifeline returns a channel closed when the lifeline (fd 4) reaches end-of-file: the
// supervisor, its only writer, has died. A missing fd 4 counts as a dead supervisor too.
func watchLifeline() <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := unix.FcntlInt(lifelineFD, unix.F_GETFD, 0); err != nil {
			return
		}
		f := os.NewFile(lifelineFD, "lifeline")
		_, _ = io.Copy(io.Discard, f) // nothing is ever written: returns at end-of-file
	}()
	return done
}

// validTaskDirPath reports whether p may be removed by the init: an absolute path whose last
// element is named exactly as MkdirTask names task directories.
func validTaskDirPath(p string) bool {
	_, ok := parseTaskDir(filepath.Base(p))
	return filepath.IsAbs(p) && filepath.Clean(p) == p && ok
}

// removeTaskDir removes the task directory once the supervisor is dead and the namespace killed:
// only a real directory of ours (never a link, never followed), through an os.Root on its parent,
// exactly as a sweep would.
func removeTaskDir(dir string) {
	root, err := os.OpenRoot(filepath.Dir(dir))
	if err != nil {
		return
	}
	defer root.Close()
	if checkTaskDir(root, filepath.Base(dir)) == "" {
		_ = root.RemoveAll(filepath.Base(dir))
	}
}

// forkCommand starts the command in its own process group, with the parent-death signal; on a
// pseudo-terminal in the foreground, so reading the terminal does not stop it with SIGTTIN (and
// in the background after all if there is no controlling terminal).
func forkCommand(path string, argv []string) (int, error) {
	sys := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if _, err := unix.IoctlGetTermios(0, unix.TCGETS); err == nil {
		sys.Foreground = true
		sys.Ctty = 0
	}
	attr := &syscall.ProcAttr{Env: os.Environ(), Files: []uintptr{0, 1, 2}, Sys: sys}
	child, err := syscall.ForkExec(path, argv, attr)
	if err != nil && sys.Foreground {
		sys.Foreground = false // no controlling terminal after all: run in the background group
		child, err = syscall.ForkExec(path, argv, attr)
	}
	return child, err
}

// initProc is the state of a running init.
type initProc struct {
	child       int      // the command
	nsInit      bool     // PID 1 of a task namespace: kill(-1) reaches only the namespace
	report      *os.File // fd 3, where the command's status goes; nil if not open
	childDone   bool     // the command was reaped
	status      initStatus
	deadlineHit bool   // the hard deadline fired before the command ended
	taskDir     string // Spec.TaskDir, removed if the supervisor dies first; "" if none
}

// serve reaps, forwards signals and enforces the hard deadline until the command has ended and
// no child is left, and returns the init's exit status. The deadline (HYGIENE trap 23) is
// enforced here, not only by the supervisor, whose timers stop while it is stopped or frozen; it
// keeps running after the command has ended, for whatever the command left behind. Nothing is
// written to stderr on the way: the stderr pipe may be full when the supervisor does not read
// it, and a blocked init would enforce nothing.
//
// When the supervisor dies (orphaned closes: end-of-file on the lifeline) it SIGKILLs the whole
// namespace, removes the task directory and exits at once (the kernel reaps the namespace).
func (in *initProc) serve(sigs <-chan os.Signal, dl initDeadline, orphaned <-chan struct{}) int {
	var deadlineC, killC <-chan time.Time
	if dl.after > 0 {
		tm := time.NewTimer(dl.after)
		defer tm.Stop()
		deadlineC = tm.C
	}
	for {
		if code, done := in.reapAll(); done {
			return code
		}
		select {
		case sig := <-sigs:
			if sig == unix.SIGCHLD {
				continue
			}
			in.forward(sig.(syscall.Signal))
			in.forward(syscall.SIGCONT)
		case <-deadlineC:
			deadlineC, in.deadlineHit = nil, true
			in.forward(syscall.SIGTERM)
			in.forward(syscall.SIGCONT)
			kt := time.NewTimer(dl.grace)
			defer kt.Stop()
			killC = kt.C
		case <-killC:
			killC = nil
			in.forward(syscall.SIGKILL)
		case <-orphaned:
			// Act at once: SIGKILL the namespace (its processes run no more code of their own),
			// remove the directory, exit. Waiting to reap them first would make this init outlive
			// its supervisor longer (on a loaded machine, by the time each dying process needs to
			// be scheduled); as PID 1 its exit makes the kernel finish the namespace off and reap it.
			in.forward(syscall.SIGKILL)
			removeTaskDir(in.taskDir)
			return 128 + int(syscall.SIGKILL)
		}
	}
}

// reapAll reaps everything that has ended: as PID 1 of the namespace every orphan is ours, so
// wait4(-1) steals from no one. The command's status is reported on fd 3. It returns done, with
// the init's exit status, once the command has ended and no child is left.
func (in *initProc) reapAll() (code int, done bool) {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if errors.Is(err, syscall.ECHILD) {
			if !in.childDone {
				return 0, false
			}
			if in.deadlineHit {
				return initDeadlineExit, true
			}
			return exitCode(in.status), true
		}
		if err != nil || pid <= 0 {
			return 0, false
		}
		if pid == in.child {
			in.childDone = true
			in.status = initStatus{code: ws.ExitStatus(), deadline: in.deadlineHit}
			if ws.Signaled() {
				in.status = initStatus{code: -1, signal: int(ws.Signal()), deadline: in.deadlineHit}
			}
			in.writeReport(in.status)
		}
	}
}

func (in *initProc) writeReport(st initStatus) {
	if in.report != nil {
		fmt.Fprint(in.report, st.String())
	}
}

func (in *initProc) forward(sig syscall.Signal) { forward(in.child, in.childDone, in.nsInit, sig) }

// forward passes a signal on to the task. Only as PID 1 of its own PID namespace (nsInit, see
// isNamespaceInit) may the init use kill(-1), which there reaches every process of the
// namespace but itself; anywhere else kill(-1) would hit every process the user may signal (as
// root: the whole machine), so outside a namespace (a hand-run init, a broken setup) it signals
// the command's process group only, never a pgid <= 1, and only while the command has not been
// reaped (afterwards its pgid may have been reused by someone else's group).
func forward(child int, childDone, nsInit bool, sig syscall.Signal) {
	if nsInit && os.Getpid() == 1 {
		_ = syscall.Kill(-1, sig)
		return
	}
	if child > 1 && !childDone {
		_ = syscall.Kill(-child, sig)
	}
}

// isNamespaceInit reports whether this process is PID 1 of a PID namespace below the one /proc
// belongs to, i.e. of a task namespace and not of the machine (or of a container whose /proc
// is its own): getpid() is 1, the parent is outside the namespace (getppid() is 0), and the
// NSpid line of /proc/self/status lists at least two levels, ending in 1. Any doubt (no /proc,
// an old kernel without NSpid) answers false: the init then signals only its command's group.
func isNamespaceInit() bool {
	if os.Getpid() != 1 || os.Getppid() != 0 {
		return false
	}
	ns, err := proctab.OwnNSpid()
	if err != nil {
		return false
	}
	return len(ns) >= 2 && ns[len(ns)-1] == 1
}

func exitCode(s initStatus) int {
	if s.signal != 0 {
		return 128 + s.signal
	}
	return s.code
}
