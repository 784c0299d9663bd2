package supervise

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// The task init: PID 1 of a task's PID namespace, this binary re-executed with initEnv set.
// It is a main of its own, so it may install signal handlers (house rule: signals only at the
// top). It starts the real command, forwards SIGTERM/SIGINT/SIGHUP to every process of the
// namespace (and SIGCONT, so stopped ones see them), reaps everything that ends (as PID 1 it is
// the only possible parent of orphans there, so wait4(-1) steals from no one), reports the
// command's status on fd 3, and exits once it has no children left. It was started with
// Pdeathsig=SIGKILL: if the worker dies, it dies, and the kernel kills the whole namespace.

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
	case "run":
		os.Unsetenv("GORACE")
		return runInit(os.Args), true
	case "run-keep-gorace":
		return runInit(os.Args), true
	default:
		fmt.Fprintf(os.Stderr, "%s: unknown mode %q in %s\n", initArg0, mode, initEnv)
		return 127, true
	}
}

// initStatus is what the init reports about the command on fd 3: "exit <code> <signal>\n",
// signal 0 when it exited normally.
type initStatus struct {
	code   int
	signal int
}

func (s initStatus) String() string { return fmt.Sprintf("%s%d %d\n", reportPrefix, s.code, s.signal) }

// parseInitStatus parses one report line.
func parseInitStatus(line string) (initStatus, error) {
	rest, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), reportPrefix)
	if !ok {
		return initStatus{}, fmt.Errorf("init report %q: no %q prefix", line, reportPrefix)
	}
	f := strings.Fields(rest)
	if len(f) != 2 {
		return initStatus{}, fmt.Errorf("init report %q: want 2 fields", line)
	}
	code, err1 := strconv.Atoi(f[0])
	sig, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || code < -1 || code > 255 || sig < 0 || sig > 64 {
		return initStatus{}, fmt.Errorf("init report %q: bad numbers", line)
	}
	return initStatus{code: code, signal: sig}, nil
}

func runInit(args []string) int {
	if len(args) < 2 {
		fmt.Fprintf(os.Stderr, "%s: no command\n", initArg0)
		return 127
	}
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGCHLD)

	report := os.NewFile(3, "init-report")
	if _, err := unix.FcntlInt(3, unix.F_GETFD, 0); err != nil {
		report = nil
	}
	path := args[1]
	sys := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if _, err := unix.IoctlGetTermios(0, unix.TCGETS); err == nil {
		// A pseudo-terminal task: put the command in the foreground so reading the terminal does
		// not stop it with SIGTTIN.
		sys.Foreground = true
		sys.Ctty = 0
	}
	child, err := syscall.ForkExec(path, args[1:], &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{0, 1, 2},
		Sys:   sys,
	})
	if err != nil && sys.Foreground {
		sys.Foreground = false // no controlling terminal after all: run in the background group
		child, err = syscall.ForkExec(path, args[1:], &syscall.ProcAttr{Env: os.Environ(), Files: []uintptr{0, 1, 2}, Sys: sys})
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: start %s: %v\n", initArg0, path, err)
		if report != nil {
			fmt.Fprint(report, initStatus{code: 127}.String())
		}
		return 127
	}

	var status initStatus
	childDone := false
	for {
		// Reap everything that has ended. As PID 1 of the namespace every orphan is ours.
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			if errors.Is(err, syscall.ECHILD) {
				if childDone {
					return exitCode(status)
				}
				break
			}
			if err != nil || pid <= 0 {
				break
			}
			if pid == child {
				childDone = true
				status = initStatus{code: ws.ExitStatus()}
				if ws.Signaled() {
					status = initStatus{code: -1, signal: int(ws.Signal())}
				}
				if report != nil {
					fmt.Fprint(report, status.String())
				}
			}
		}
		sig := <-sigs
		if sig == unix.SIGCHLD {
			continue
		}
		forward(child, sig.(syscall.Signal))
		forward(child, syscall.SIGCONT)
	}
}

// forward passes a signal on to the task. Only as PID 1 of its own PID namespace may the init
// use kill(-1), which there reaches every process of the namespace but itself; anywhere else
// kill(-1) would hit every process the user may signal (as root: the whole machine), so
// outside a namespace (a hand-run init, a broken setup) it signals the command's process
// group only, and never a pgid <= 1.
func forward(child int, sig syscall.Signal) {
	if os.Getpid() == 1 {
		_ = syscall.Kill(-1, sig)
		return
	}
	if child > 1 {
		_ = syscall.Kill(-child, sig)
	}
}

func exitCode(s initStatus) int {
	if s.signal != 0 {
		return 128 + s.signal
	}
	return s.code
}
