package run

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/proxyline/proxyline/internal/killtest/observe"
	"github.com/proxyline/proxyline/internal/killtest/scenario"
	"github.com/proxyline/proxyline/internal/proctab"
)

// proc is one process the runner started (a component instance or a workload step).
type proc struct {
	name      string
	cmd       *exec.Cmd
	pid       int
	startTime uint64 // from /proc, for identity; 0 if it could not be read
	started   time.Time
	done      chan struct{} // closed when Wait returned
	pumped    chan struct{} // closed when the output reader finished
	out       *os.File      // read end of the output pipe

	mu         sync.Mutex
	state      *os.ProcessState // guarded by mu; set before done is closed
	exitedAt   time.Time        // guarded by mu
	signaled   syscall.Signal   // guarded by mu: last fault or stop signal sent to it
	signaledAt time.Time        // guarded by mu
	byFault    bool             // guarded by mu: the last signal came from a fault
	faultKill  bool             // guarded by mu: a fault sent it SIGKILL (its exit is not judged)
	stopReason string           // guarded by mu: why the runner stopped it ("scenario end", "restart")
	late       time.Duration    // guarded by mu: non-zero when it missed this stop deadline and was killed
	below      []belowKill      // guarded by mu: signals faults sent to processes below it
}

// belowKill is a fault's signal to a process below a component's main process.
type belowKill struct {
	pid   int
	sig   syscall.Signal
	fault string
}

type procSpec struct {
	name    string
	argv    []string
	sh      string
	env     map[string]string
	dir     string
	hub     *lineHub
	logPath string
	// harness marks a process of the harness's own (a setup step): no run cookie, not in the
	// run cgroup, not declared to the observer, so never judged as the system's.
	harness bool
}

// startProc starts a process in its own process group, in the run cgroup when there is one, with
// the run cookie and a parent-death SIGKILL (held by a locked OS thread from Start to Wait, see
// golang/go#27505), and its stdout+stderr on a pipe the runner reads line by line. The write end
// is closed in the harness right after Start, and Wait does not wait for the pipe, so children
// that inherit it cannot hang the runner (HYGIENE trap 14).
func (r *runner) startProc(s procSpec) (*proc, error) {
	cmd, err := r.command(s)
	if err != nil {
		return nil, err
	}
	rd, wr, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start %s: output pipe: %w", s.name, err)
	}
	var logf *os.File
	if s.logPath != "" {
		logf, err = os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			rd.Close()
			wr.Close()
			return nil, fmt.Errorf("start %s: log file: %w", s.name, err)
		}
	}
	cmd.Stdout, cmd.Stderr = wr, wr
	p := &proc{name: s.name, cmd: cmd, done: make(chan struct{}), pumped: make(chan struct{}), out: rd}
	err = r.launch(p, !s.harness)
	wr.Close()
	if err != nil {
		rd.Close()
		if logf != nil {
			logf.Close()
		}
		return nil, fmt.Errorf("start %s (%s): %w", s.name, strings.Join(cmd.Args, " "), err)
	}
	if st, err := proctab.Stat(p.pid); err == nil {
		p.startTime = st.StartTime
	}
	go func() {
		defer close(p.pumped)
		pump(rd, s.hub, logf)
		if logf != nil {
			logf.Close()
		}
	}()
	r.live.track(p)
	return p, nil
}

// command builds the command of a process spec: its program found with the run's PATH, the
// run's environment (without the cookie for the harness's own steps), its own process group, a
// parent-death SIGKILL, and the run cgroup for the system's processes.
func (r *runner) command(s procSpec) (*exec.Cmd, error) {
	argv := s.argv
	if len(argv) == 0 {
		argv = []string{"sh", "-c", s.sh}
	}
	env := append([]string(nil), r.environ...)
	if s.harness {
		env = r.probeEnv().Environ
	}
	for k, v := range s.env {
		env = append(env, k+"="+v)
	}
	path, err := lookPath(argv[0], r.pathEnv)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", s.name, err)
	}
	dir := s.dir
	if dir == "" {
		dir = r.tmp
	}
	cmd := &exec.Cmd{Path: path, Args: argv, Env: env, Dir: dir}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if r.live.cg != nil && !s.harness {
		cmd.SysProcAttr.UseCgroupFD = true
		cmd.SysProcAttr.CgroupFD = int(r.live.cg.fd.Fd())
	}
	return cmd, nil
}

// launch starts p.cmd on a goroutine that holds its OS thread until Wait returns (the
// parent-death signal is per thread), declares it to the observer when own is set, and returns
// once it started. The goroutine records the exit and closes p.done.
func (r *runner) launch(p *proc, own bool) error {
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := p.cmd.Start(); err != nil {
			started <- err
			return
		}
		p.pid = p.cmd.Process.Pid
		p.started = time.Now()
		if r.live.obs != nil && own {
			r.live.obs.Own(p.pid)
		}
		started <- nil
		_ = p.cmd.Wait()
		p.mu.Lock()
		p.state = p.cmd.ProcessState
		p.exitedAt = time.Now()
		p.mu.Unlock()
		close(p.done)
	}()
	return <-started
}

// key is the process's identity.
func (p *proc) key() observe.Key { return observe.Key{PID: p.pid, StartTime: p.startTime} }

// endReason says why the process ended, for the evidence of orphans that died right after.
func (p *proc) endReason() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.stopReason == "scenario end":
		return "stopped at the end"
	case p.stopReason != "":
		return "stopped for a " + p.stopReason
	case p.faultKill:
		return "SIGKILLed by a fault"
	case p.byFault:
		return "after a fault's " + scenario.SignalName(p.signaled)
	}
	return "ended on its own"
}

// exited reports whether Wait returned.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// status returns the exit as an ExitStatus once exited.
func (p *proc) status() (scenario.ExitStatus, time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state == nil {
		return scenario.ExitStatus{}, time.Time{}, false
	}
	ws, _ := p.state.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return scenario.ExitStatus{Signal: ws.Signal()}, p.exitedAt, true
	}
	return scenario.ExitStatus{Code: ws.ExitStatus()}, p.exitedAt, true
}

// signal sends sig to the main process (through Go's pidfd, so never to a reused pid), or to its
// process group when group is set (never a pgid ≤ 1).
func (p *proc) signal(sig syscall.Signal, group, fault bool) error {
	if p.exited() {
		return errors.New("already exited")
	}
	p.mu.Lock()
	if p.faultKill {
		p.mu.Unlock()
		return errors.New("already SIGKILLed by a fault")
	}
	p.signaled, p.signaledAt, p.byFault = sig, time.Now(), fault
	p.faultKill = fault && sig == syscall.SIGKILL
	p.mu.Unlock()
	if group {
		if p.pid <= 1 {
			return fmt.Errorf("refusing to signal process group %d", p.pid)
		}
		if err := syscall.Kill(-p.pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("signal group %d: %w", p.pid, err)
		}
		return nil
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal pid %d: %w", p.pid, err)
	}
	return nil
}

// killGroup sends SIGKILL to the process group (teardown).
func (p *proc) killGroup() {
	if p.pid > 1 {
		_ = syscall.Kill(-p.pid, syscall.SIGKILL)
	}
	if !p.exited() {
		_ = p.cmd.Process.Kill()
	}
}

// signalKey sends sig to (pid, starttime) through a pidfd after re-checking the start time, so a
// recycled pid is never hit (HYGIENE trap 1). With wait > 0 it then waits up to wait for the
// process to exit (a SIGKILL lands when the process is next scheduled, not when it is sent).
func signalKey(pid int, startTime uint64, sig syscall.Signal, wait time.Duration) error {
	_, err := signalKeyAlive(pid, startTime, sig, wait)
	return err
}

// signalKeyAlive is signalKey that also returns when the process was last known alive (not
// exited: not even a zombie) right before the signal, or zero when that could not be told.
func signalKeyAlive(pid int, startTime uint64, sig syscall.Signal, wait time.Duration) (alive time.Time, err error) {
	if pid <= 1 {
		return time.Time{}, fmt.Errorf("refusing to signal pid %d", pid)
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return time.Time{}, fmt.Errorf("pidfd %d: %w", pid, err)
	}
	defer unix.Close(fd)
	st, err := proctab.Stat(pid)
	if err != nil {
		return time.Time{}, fmt.Errorf("stat %d: %w", pid, err)
	}
	if startTime != 0 && st.StartTime != startTime {
		return time.Time{}, fmt.Errorf("pid %d was reused (start time %d, want %d)", pid, st.StartTime, startTime)
	}
	alive = pidfdAlive(fd)
	if err := unix.PidfdSendSignal(fd, sig, nil, 0); err != nil {
		return time.Time{}, fmt.Errorf("signal pid %d: %w", pid, err)
	}
	if wait > 0 {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		for end := time.Now().Add(wait); time.Now().Before(end); {
			n, err := unix.Poll(pfd, int(time.Until(end)/time.Millisecond)+1)
			if n > 0 || (err != nil && !errors.Is(err, unix.EINTR)) {
				break
			}
		}
	}
	return alive, nil
}

// pidfdAlive returns the instant before a poll of the pidfd showed its process not exited (a
// pidfd turns readable when its process exits, zombie included), or zero when it had exited or
// the poll failed. The time is taken before the poll, so the process was alive at it.
func pidfdAlive(fd int) time.Time {
	before := time.Now()
	n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0)
	if err != nil || n != 0 {
		return time.Time{}
	}
	return before
}

// aliveBefore returns when the unreaped child pid was last known alive, just now (see
// pidfdAlive), or zero when that cannot be told.
func aliveBefore(pid int) time.Time {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return time.Time{}
	}
	defer unix.Close(fd)
	return pidfdAlive(fd)
}

// lookPath resolves a program with the components' PATH (which has --bin first); exec.Command
// would use the harness's own PATH instead.
func lookPath(name, pathEnv string) (string, error) {
	if strings.Contains(name, "/") {
		if err := executable(name); err != nil {
			return "", err
		}
		return name, nil
	}
	for _, dir := range filepath.SplitList(pathEnv) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if executable(p) == nil {
			if !filepath.IsAbs(p) {
				if abs, err := filepath.Abs(p); err == nil {
					p = abs
				}
			}
			return p, nil
		}
	}
	return "", fmt.Errorf("program %q not found in PATH %s", name, pathEnv)
}

func executable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", p)
	}
	return nil
}
