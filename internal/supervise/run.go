package supervise

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// ErrStopped is returned by Run for a task cut short by Supervisor.Stop, and for a Run after Stop.
var ErrStopped = errors.New("supervisor stopped")

// killWait bounds the wait for processes to disappear after SIGKILL (D state can delay it;
// HYGIENE trap 8).
const killWait = 5 * time.Second

// Validate checks a task spec.
func (sp Spec) Validate() error {
	if sp.Path == "" {
		return errors.New("task spec: empty path")
	}
	if sp.Timeout < 0 || sp.OutputLimit < 0 {
		return fmt.Errorf("task spec %s: negative timeout or output limit", sp.Path)
	}
	return nil
}

// Run starts the task, waits for it and cleans up after it. When the task's main process ends,
// whatever it left running is found (task cgroup, or cookie scan), reported in Result.Escaped,
// and killed (SIGTERM+SIGCONT, grace, SIGKILL) where a layer allows. When ctx is canceled, the
// timeout expires or the supervisor stops, the whole task gets SIGTERM+SIGCONT, then SIGKILL
// after the grace period, and its cgroup is killed and confirmed empty.
//
// The error is nil when the task ran to an end (whatever its exit status, or a timeout: see
// Result); it is ctx's error when ctx ended it, ErrStopped when Stop did, and another error
// when the task could not be started or could not be cleaned up.
func (s *Supervisor) Run(ctx context.Context, spec Spec) (Result, error) {
	if err := spec.Validate(); err != nil {
		return Result{}, err
	}
	s.mu.Lock()
	if !s.started || s.stopped {
		s.mu.Unlock()
		if !s.started {
			return Result{}, errors.New("supervisor: Run before Start")
		}
		return Result{}, ErrStopped
	}
	s.tasks.Add(1)
	s.mu.Unlock()
	defer s.tasks.Done()

	t0 := time.Now()
	seq := s.seq.Add(1)
	t := &task{
		s:      s,
		spec:   spec,
		layers: s.layers,
		id:     fmt.Sprintf("%s-%d", s.instance, seq),
		seq:    seq,
	}
	t.cookie = Cookie{OwnerPID: s.self.pid, OwnerStart: s.self.start, TaskID: t.id}.String()
	res, err := t.run(ctx)
	res.TaskID = t.id
	res.Duration = time.Since(t0)
	return res, err
}

// task is one run of a Spec.
type task struct {
	s      *Supervisor
	spec   Spec
	layers Layers
	id     string
	seq    uint64
	cookie string

	cmd      *exec.Cmd
	pid      int    // the process we started: the command, or its init
	cgDir    string // task cgroup, when the Cgroup layer is on
	procDone bool   // cmd.Wait returned
	termSent bool
}

func (t *task) run(ctx context.Context) (Result, error) {
	var res Result
	spec := t.spec
	// LookPath also checks that a path with a slash is an executable file, so a typo fails
	// here rather than as exit status 127 from inside a task init.
	path, err := exec.LookPath(spec.Path)
	if err != nil {
		return res, fmt.Errorf("find %s: %w", spec.Path, err)
	}
	env := spec.Env
	if env == nil {
		env = os.Environ()
	}
	env = withEnv(env, []string{CookieEnv, initEnv, deadlineEnv}, CookieEnv+"="+t.cookie)
	limit := cmp.Or(spec.OutputLimit, defaultOutputLimit)

	cmd := &exec.Cmd{Path: path, Args: append([]string{spec.Path}, spec.Args...), Dir: spec.Dir, Env: env}
	sys := &syscall.SysProcAttr{}
	cmd.SysProcAttr = sys
	var childFiles []*os.File // closed once the child has them
	closeChild := func() {
		for _, f := range childFiles {
			f.Close()
		}
		childFiles = nil
	}
	defer closeChild()

	// Standard streams: /dev/null or a pseudo-terminal in, our own pipes out (files, not Go's
	// copying pipes, so a descendant holding them cannot make Wait hang: HYGIENE trap 14).
	var readers []*os.File
	writers := []io.Writer{spec.Stdout, spec.Stderr}
	if spec.PTY {
		master, tty, err := pty.Open()
		if err != nil {
			return res, fmt.Errorf("open pseudo-terminal for %s: %w", spec.Path, err)
		}
		childFiles = append(childFiles, tty)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
		sys.Setsid, sys.Setctty, sys.Ctty = true, true, 0
		readers = []*os.File{master}
	} else {
		null, err := os.Open(os.DevNull)
		if err != nil {
			return res, fmt.Errorf("open %s: %w", os.DevNull, err)
		}
		childFiles = append(childFiles, null)
		cmd.Stdin = null
		for i := range 2 {
			r, w, err := os.Pipe()
			if err != nil {
				for _, r := range readers {
					r.Close()
				}
				return res, fmt.Errorf("create output pipe for %s: %w", spec.Path, err)
			}
			childFiles = append(childFiles, w)
			readers = append(readers, r)
			if i == 0 {
				cmd.Stdout = w
			} else {
				cmd.Stderr = w
			}
		}
		sys.Setpgid = t.layers.ProcessGroup
	}
	if t.layers.Pdeathsig {
		sys.Pdeathsig = syscall.SIGKILL
	}
	if t.layers.Cgroup {
		t.cgDir = filepath.Join(t.s.ownerDir, fmt.Sprintf("task-%d", t.seq))
		if err := os.Mkdir(t.cgDir, 0o755); err != nil {
			return res, fmt.Errorf("create task cgroup %s: %w", t.cgDir, err)
		}
		defer t.removeCgroup()
		f, err := os.Open(t.cgDir)
		if err != nil {
			return res, fmt.Errorf("open task cgroup %s: %w", t.cgDir, err)
		}
		childFiles = append(childFiles, f)
		sys.UseCgroupFD, sys.CgroupFD = true, int(f.Fd())
	}
	var reportR *os.File
	if t.layers.PIDNamespace {
		r, w, err := os.Pipe()
		if err != nil {
			return res, fmt.Errorf("create init report pipe: %w", err)
		}
		reportR = r
		defer reportR.Close()
		childFiles = append(childFiles, w)
		cmd.ExtraFiles = []*os.File{w}
		cmd.Path = selfExe
		cmd.Args = append([]string{initArg0, path}, spec.Args...)
		if _, ok := os.LookupEnv("GORACE"); ok && spec.Env == nil || envHas(spec.Env, "GORACE") {
			cmd.Env = append(cmd.Env, initEnv+"=run-keep-gorace")
		} else {
			cmd.Env = append(cmd.Env, initEnv+"=run", noRaceSleep)
		}
		if spec.Timeout > 0 {
			// The init's own hard deadline, a backstop behind ours (HYGIENE trap 23): it holds
			// even while this process is stopped or frozen. See deadlineMargin.
			cmd.Env = append(cmd.Env, deadlineEnv+"="+initDeadlineFor(spec.Timeout, t.s.grace).String())
		}
		setPIDNamespace(sys)
	}
	t.cmd = cmd

	// Pdeathsig fires when the thread that forked the child exits: keep this goroutine on its
	// thread until the child is reaped (go.dev/issue/27505, HYGIENE trap 11).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	t.s.startMu.Lock()
	err = cmd.Start()
	if err == nil {
		t.pid = cmd.Process.Pid
		t.s.addChild(t.pid)
	}
	t.s.startMu.Unlock()
	closeChild()
	if err != nil {
		for _, r := range readers {
			r.Close()
		}
		return res, fmt.Errorf("start %s: %w", spec.Path, err)
	}
	defer t.s.removeChild(t.pid)
	captures := make([]*capture, len(readers))
	for i, r := range readers {
		captures[i] = startCapture(r, writers[i], limit)
	}
	waitCh := make(chan struct{})
	go func() {
		_ = cmd.Wait() // the status is in cmd.ProcessState
		close(waitCh)
	}()
	reportCh := make(chan initStatus, 1)
	if reportR != nil {
		go func() {
			defer close(reportCh)
			line, err := bufio.NewReader(reportR).ReadString('\n')
			if st, perr := parseInitStatus(line); err == nil && perr == nil {
				reportCh <- st
			}
		}()
	} else {
		close(reportCh)
	}
	if spec.Started != nil {
		spec.Started(t.pid)
	}

	// Phase 1: wait for the command to end, or for a reason to end it.
	var timeout <-chan time.Time
	if spec.Timeout > 0 {
		tm := time.NewTimer(spec.Timeout)
		defer tm.Stop()
		timeout = tm.C
	}
	var reason error
	var status *initStatus
	mainDone := false
	for !mainDone && reason == nil {
		select {
		case <-waitCh:
			t.procDone, mainDone = true, true
			status = drainReport(reportCh, status)
			reportCh = nil
		case st, ok := <-reportCh:
			if ok {
				status, mainDone = &st, true
			}
			reportCh = nil
		case <-timeout:
			res.TimedOut = true
			reason = fmt.Errorf("task %s: timeout %v", t.id, spec.Timeout)
		case <-ctx.Done():
			reason = fmt.Errorf("task %s: %w", t.id, context.Cause(ctx))
		case <-t.s.stopCtx.Done():
			reason = fmt.Errorf("task %s: %w", t.id, ErrStopped)
		}
	}

	// Phase 2: on a timeout or cancel, SIGTERM the whole task and give it the grace period.
	var seen []member // processes of the task alive when it was stopped: reaped at the end
	defer func() {
		for _, m := range seen {
			m.close()
		}
	}()
	if reason != nil {
		t.s.log.Info("stopping task", "task", t.id, "pid", t.pid, "reason", reason)
		m, r := t.survivors()
		seen = append(m, r...)
		t.terminate(nil)
		graceEnd := time.NewTimer(t.s.grace)
		for !mainDone {
			select {
			case <-waitCh:
				t.procDone, mainDone = true, true
				status = drainReport(reportCh, status)
				reportCh = nil
			case st, ok := <-reportCh:
				if ok {
					status, mainDone = &st, true
				}
				reportCh = nil
			case <-graceEnd.C:
				mainDone = true // it ignored SIGTERM: the SIGKILL below ends it
			}
		}
		graceEnd.Stop()
	}

	// Phase 3: whatever is left of the task is an escapee: report it, then end it.
	var cleanupErr error
	members, reported := t.survivors()
	for _, m := range append(append([]member{}, members...), reported...) {
		res.Escaped = append(res.Escaped, m.pid)
	}
	if len(reported) > 0 {
		t.s.log.Warn("task left processes that no layer may kill (cookie layer off)", "task", t.id, "pids", pidsOf(reported))
	}
	if len(members) > 0 {
		t.s.log.Warn("task left processes running; killing them", "task", t.id, "pids", pidsOf(members))
	}
	if len(members) > 0 || !t.procDone {
		if len(members) > 0 {
			t.terminate(members)
			t.waitGone(members, waitCh, time.Now().Add(t.s.grace))
		}
		t.kill(members)
		if !t.waitGone(members, waitCh, time.Now().Add(killWait)) {
			cleanupErr = fmt.Errorf("task %s: processes survive SIGKILL after %v: %v", t.id, killWait, alivePids(members))
		}
	}
	if !t.procDone {
		select {
		case <-waitCh:
			t.procDone = true
		case <-time.After(killWait):
			cleanupErr = errors.Join(cleanupErr, fmt.Errorf("task %s: process %d did not end after SIGKILL", t.id, t.pid))
		}
	}
	// Reap only now: a member that died while its parent still lived becomes our zombie only
	// when that parent exits, and every process of the task has exited by now.
	for _, m := range append(members, reported...) {
		if m.exited() {
			m.reap() // an orphan re-parented to us (subreaper): collect it, by its pidfd only
		}
		m.close()
	}
	// Processes seen when the task was stopped were all signalled; one may still be exiting
	// (its environ already gone, so the cookie scan above missed it). Give them the kill
	// deadline, except those only reported (nothing may kill them), then reap.
	var dying []member
	for _, m := range seen {
		if !slices.Contains(res.Escaped, m.pid) || t.layers.Cookie || t.cgDir != "" {
			dying = append(dying, m)
		}
	}
	waitMembers(context.Background(), dying, time.Now().Add(killWait))
	for _, m := range seen {
		if m.exited() {
			m.reap()
		}
	}
	t.reapZombies()

	// Output: every writer is dead now, except escapees nobody may kill; don't wait for those.
	for _, c := range captures {
		select {
		case <-c.done:
		case <-time.After(200 * time.Millisecond):
			c.r.Close()
			<-c.done
		}
		c.r.Close()
		if c.truncated.Load() {
			res.Truncated = true
		}
	}

	// The exit status: from the init's report under a PID namespace, else from Wait.
	res.ExitCode = -1
	if status != nil {
		res.ExitCode = status.code
		if status.signal != 0 {
			res.Signaled, res.Signal, res.ExitCode = true, unix.SignalName(syscall.Signal(status.signal)), -1
		}
	} else if ps := cmd.ProcessState; ps != nil {
		ws := ps.Sys().(syscall.WaitStatus)
		res.ExitCode = ws.ExitStatus()
		if ws.Signaled() {
			res.Signaled, res.Signal = true, unix.SignalName(ws.Signal())
		}
	}
	if res.TimedOut {
		reason = nil // a timeout is an outcome, in Result, not an error
	}
	if status != nil && status.deadline {
		// The init's deadline ended the command: we were not running at our own timeout (stopped
		// or frozen). Still a timeout; any other reason we had stays the error.
		res.TimedOut = true
		t.s.log.Warn("task ended by its init's hard deadline, not by the supervisor", "task", t.id, "timeout", spec.Timeout)
	}
	return res, errors.Join(reason, cleanupErr)
}

// initDeadlineFor is the deadline handed to a task's init for a Spec.Timeout: after our own
// SIGTERM (at timeout) and SIGKILL (at timeout+grace), plus deadlineMargin, so that it acts only
// when we could not; then the same grace before its SIGKILL.
func initDeadlineFor(timeout, grace time.Duration) initDeadline {
	const limit = maxDeadlineMS * time.Millisecond // each term below it: the sum cannot overflow
	timeout, grace = min(timeout, limit), min(grace, limit)
	after := min(timeout+grace+deadlineMargin, limit)
	return initDeadline{after: after.Round(time.Millisecond), grace: grace.Round(time.Millisecond)}
}

// survivors lists the task's live processes other than the one we started: members we may
// signal (in the task cgroup, or found by cookie when the Cookie layer is on), and processes
// only reported (found by cookie with the Cookie layer off).
func (t *task) survivors() (members, reported []member) {
	fs := t.s.fs
	if t.cgDir != "" {
		pids, err := cgroupProcs(t.cgDir)
		if err != nil {
			t.s.log.Warn("list task cgroup", "task", t.id, "err", err)
		}
		for _, pid := range pids {
			if pid == t.pid {
				continue
			}
			if m, err := openMember(fs, pid, 0, t.inCgroup); err == nil {
				members = append(members, m)
			}
		}
		return members, nil
	}
	procs, err := fs.AllProcs()
	if err != nil {
		t.s.log.Warn("scan processes for the task cookie", "task", t.id, "err", err)
		return nil, nil
	}
	hasCookie := func(pid int) bool { return procCookie(fs, pid) == t.cookie }
	for _, p := range procs {
		if p.PID == t.pid || p.PID == t.s.self.pid || !hasCookie(p.PID) {
			continue
		}
		m, err := openMember(fs, p.PID, 0, hasCookie)
		if err != nil {
			continue
		}
		if t.layers.Cookie {
			members = append(members, m)
		} else {
			reported = append(reported, m)
		}
	}
	return members, reported
}

// terminate sends SIGTERM and SIGCONT (a stopped process only sees SIGTERM once continued:
// HYGIENE trap 6) to the whole task as far as the layers reach: the init (which forwards to
// its whole namespace), the process group, the cgroup's processes, and members.
func (t *task) terminate(members []member) {
	t.termSent = true
	t.signalAll(members, syscall.SIGTERM)
	t.signalAll(members, syscall.SIGCONT)
}

// kill sends SIGKILL to everything of the task: the init (the kernel then kills its whole
// namespace), the group, the cgroup (cgroup.kill), members.
func (t *task) kill(members []member) {
	t.signalAll(members, syscall.SIGKILL)
	if t.cgDir != "" {
		if err := cgroupKill(t.cgDir); err != nil {
			t.s.log.Warn("kill task cgroup", "task", t.id, "err", err)
		}
	}
}

func (t *task) signalAll(members []member, sig syscall.Signal) {
	if !t.procDone {
		_ = t.cmd.Process.Signal(sig) // through the pidfd Go holds: never a reused pid
	}
	// The group id is the pid we started. Signal it only while that process has not been
	// waited for, or while a verified member still belongs to the group, so the id cannot have
	// been reused; never a pgid <= 1 (HYGIENE trap 2).
	groupLive := !t.procDone
	for _, m := range members {
		if pi, err := readProc(t.s.fs, m.pid); err == nil && pi.pgid == t.pid {
			groupLive = true
		}
	}
	if (t.layers.ProcessGroup || t.spec.PTY) && !t.layers.PIDNamespace && t.pid > 1 && groupLive {
		_ = syscall.Kill(-t.pid, sig)
	}
	if t.cgDir != "" && sig != syscall.SIGKILL {
		pids, _ := cgroupProcs(t.cgDir)
		for _, pid := range pids {
			if pid == t.pid {
				continue
			}
			if m, err := openMember(t.s.fs, pid, 0, t.inCgroup); err == nil {
				_ = m.signal(sig)
				m.close()
			}
		}
	}
	for _, m := range members {
		_ = m.signal(sig)
	}
}

// waitGone polls until the started process was waited for, every member has exited and the
// task cgroup is empty, or the deadline passes. It reports whether all are gone.
func (t *task) waitGone(members []member, waitCh <-chan struct{}, deadline time.Time) bool {
	for i := 0; ; i++ {
		if !t.procDone {
			select {
			case <-waitCh:
				t.procDone = true
			default:
			}
		}
		gone := t.procDone
		for _, m := range members {
			if !m.exited() {
				gone = false
			}
		}
		if gone && t.cgDir != "" {
			pop, err := cgroupPopulated(t.cgDir)
			gone = err == nil && !pop
		}
		if gone {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pollInterval(i)) // polling, bounded by the deadline
	}
}

// reapZombies collects zombies re-parented to us (subreaper) that belonged to this task: same
// process group or the task cgroup. Only these pids, each by its pidfd.
// It runs whatever the Subreaper layer says: PR_SET_CHILD_SUBREAPER is per process, so another
// Supervisor in the same program may have set it.
func (t *task) reapZombies() {
	children, err := ownChildren()
	if err != nil {
		return
	}
	for _, pid := range children {
		if t.s.isChild(pid) {
			continue
		}
		pi, err := readProc(t.s.fs, pid)
		if err != nil || pi.ppid != t.s.self.pid || pi.state != "Z" {
			continue
		}
		if pi.pgid != t.pid && !t.inCgroup(pid) {
			continue
		}
		if m, err := openMember(t.s.fs, pid, pi.start, nil); err == nil {
			m.reap()
			m.close()
		}
	}
}

// inCgroup reports whether pid is in this task's cgroup (zombies still show theirs).
func (t *task) inCgroup(pid int) bool {
	if t.cgDir == "" {
		return false
	}
	suffix := "/" + filepath.Base(filepath.Dir(t.cgDir)) + "/" + filepath.Base(t.cgDir)
	return strings.HasSuffix(procCgroup2(pid), suffix)
}

func (t *task) removeCgroup() {
	if err := cgroupWaitEmpty(t.cgDir, time.Now().Add(killWait), true); err != nil {
		t.s.log.Warn("task cgroup not empty", "task", t.id, "err", err)
	}
	if err := cgroupRemove(t.cgDir); err != nil {
		t.s.log.Warn("remove task cgroup", "task", t.id, "err", err)
	}
}

func pidsOf(ms []member) []int {
	out := make([]int, len(ms))
	for i, m := range ms {
		out[i] = m.pid
	}
	return out
}

func alivePids(ms []member) []int {
	var out []int
	for _, m := range ms {
		if !m.exited() {
			out = append(out, m.pid)
		}
	}
	return out
}

func envHas(env []string, name string) bool {
	for _, kv := range env {
		if strings.HasPrefix(kv, name+"=") {
			return true
		}
	}
	return false
}

// drainReport returns the init's report once the init has exited (its pipe is at EOF then, so
// this does not block); ch is nil once read, or closed at once when there is no init.
func drainReport(ch <-chan initStatus, prev *initStatus) *initStatus {
	if ch == nil {
		return prev
	}
	if st, ok := <-ch; ok {
		return &st
	}
	return prev
}
