package supervise

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/proxyline/proxyline/internal/proctab"
)

// Errors of Run, for errors.Is.
var (
	// ErrStopped is returned for a task cut short by Supervisor.Stop, and for a Run after Stop.
	ErrStopped = errors.New("supervisor stopped")
	// ErrStart is wrapped by every error of a task that could not be started: the program was
	// not found or is not executable, a pipe, pseudo-terminal or task cgroup could not be made,
	// fork/exec failed. The command never ran, so the failure is the supervisor's set-up, not
	// the command's.
	ErrStart = errors.New("task not started")
)

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
		return Result{}, fmt.Errorf("%w: %w", ErrStart, err)
	}
	s.mu.Lock()
	if !s.started || s.stopped {
		s.mu.Unlock()
		if !s.started {
			return Result{}, fmt.Errorf("%w: supervisor: Run before Start", ErrStart)
		}
		return Result{}, ErrStopped
	}
	seq := s.seq.Add(1)
	id := fmt.Sprintf("%s-%d", s.instance, seq)
	s.running[id] = struct{}{}
	s.tasks.Add(1)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.running, id)
		s.mu.Unlock()
		s.tasks.Done()
	}()

	t0 := time.Now()
	t := &task{s: s, spec: spec, layers: s.layers, id: id, seq: seq}
	t.cookie = Cookie{OwnerPIDNS: s.owner.ns, OwnerPID: s.owner.pid, OwnerStart: s.owner.start, TaskID: t.id}.String()
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
}

// run is the life of a task, one phase after another: prepare and start it; wait for its end or
// a reason to end it (timeout, ctx, Stop); on such a reason, SIGTERM and the grace period; end
// and report whatever is left of it; reap; collect its output; make the result.
func (t *task) run(ctx context.Context) (Result, error) {
	l, err := t.prepare()
	if err != nil {
		return Result{}, err
	}
	defer t.release(l)
	// Pdeathsig fires when the thread that forked the child exits: keep this goroutine on its
	// thread until the child is reaped (go.dev/issue/27505, HYGIENE trap 11).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	r, err := t.start(l)
	if err != nil {
		return Result{}, err
	}
	defer t.s.removeChild(t.pid)

	var res Result
	reason := t.waitOrStop(ctx, r, &res)
	var seen []member      // processes of the task alive when it was stopped: reaped at the end
	var graceEnd time.Time // when the grace after our SIGTERM ends; zero if none was sent
	if reason != nil {
		seen, graceEnd = t.terminateAndGrace(r, reason)
	}
	defer closeMembers(seen)
	members, reported, cleanupErr := t.endLeftovers(r, &res, graceEnd)
	t.reap(members, reported, seen, res.Escaped)
	res.Truncated = collectOutput(r.captures, len(reported) > 0)
	return t.result(res, r.status, reason, cleanupErr)
}

// taskEvent is what ended a wait for the task's main process.
type taskEvent int

const (
	mainEnded  taskEvent = iota // Wait returned, or the init reported its command's status
	timerFired                  // the timer waited for: Spec.Timeout, or the grace period after SIGTERM
	ctxDone                     // Run's context ended
	stopped                     // the supervisor is stopping
	stopCut                     // the supervisor's Stop was cut short
)

// awaitMain waits until the task's main process has ended, or one of the other events comes
// first; nil channels never fire. It is the one select on the process: the phases differ only in
// what else they wait for.
func (t *task) awaitMain(r *running, timer <-chan time.Time, ctx, stop, cut <-chan struct{}) taskEvent {
	for {
		select {
		case <-r.waitCh:
			t.procDone = true
			r.status = drainReport(r.reportCh, r.status)
			r.reportCh = nil
			return mainEnded
		case st, ok := <-r.reportCh:
			r.reportCh = nil
			if ok {
				r.status = &st
				return mainEnded
			}
		case <-timer:
			return timerFired
		case <-ctx:
			return ctxDone
		case <-stop:
			return stopped
		case <-cut:
			return stopCut
		}
	}
}

// waitOrStop waits for the task's main process to end and returns nil, or for a reason to end
// the task (its timeout, ctx, the supervisor's Stop) and returns that reason. A timeout is also
// marked in res.
func (t *task) waitOrStop(ctx context.Context, r *running, res *Result) error {
	var timeout <-chan time.Time
	if t.spec.Timeout > 0 {
		tm := time.NewTimer(t.spec.Timeout)
		defer tm.Stop()
		timeout = tm.C
	}
	switch t.awaitMain(r, timeout, ctx.Done(), t.s.stopCtx.Done(), nil) {
	case timerFired:
		res.TimedOut = true
		return fmt.Errorf("task %s: timeout %v", t.id, t.spec.Timeout)
	case ctxDone:
		return fmt.Errorf("task %s: %w", t.id, context.Cause(ctx))
	case stopped:
		return fmt.Errorf("task %s: %w", t.id, ErrStopped)
	}
	return nil
}

// terminateAndGrace SIGTERMs the whole task (and SIGCONTs it), once per process, and gives its
// main process the grace period to end, or less if the supervisor's Stop is cut short. It returns
// the task's other processes alive at the SIGTERM, to be reaped at the end, and when the grace
// ends (endLeftovers gives the others the rest of it, without a second SIGTERM).
func (t *task) terminateAndGrace(r *running, reason error) ([]member, time.Time) {
	t.s.log.Info("stopping task", "task", t.id, "pid", t.pid, "reason", reason)
	m, rep := t.survivors()
	seen := append(m, rep...)
	t.terminate(m)
	end := time.Now().Add(t.s.grace)
	graceEnd := time.NewTimer(t.s.grace)
	defer graceEnd.Stop()
	// mainEnded, timerFired (it ignored SIGTERM) or stopCut: either way, what is left gets SIGKILL.
	t.awaitMain(r, graceEnd.C, nil, nil, t.s.cutCtx.Done())
	return seen, end
}

// endLeftovers treats whatever is left of the task as an escapee: lists it in res.Escaped, then
// ends it (SIGTERM+SIGCONT, grace, SIGKILL, cgroup.kill) where a layer allows, and waits for it
// and for the main process. When the task was stopped (graceEnd set) its processes have had
// their SIGTERM already: they get the rest of that grace, then SIGKILL, never a second SIGTERM.
// Processes only reported (the cookie layer off) are left running. The error says what survived
// SIGKILL.
func (t *task) endLeftovers(r *running, res *Result, graceEnd time.Time) (members, reported []member, err error) {
	members, reported = t.survivors()
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
			if graceEnd.IsZero() {
				t.terminate(members)
				graceEnd = time.Now().Add(t.s.grace)
			}
			t.waitGone(members, r.waitCh, graceEnd, t.s.cutCtx.Done())
		}
		t.kill(members)
		if !t.waitGone(members, r.waitCh, time.Now().Add(killWait), nil) {
			err = fmt.Errorf("task %s: processes survive SIGKILL after %v: %v", t.id, killWait, alivePids(members))
		}
	}
	if !t.procDone {
		select {
		case <-r.waitCh:
			t.procDone = true
		case <-time.After(killWait):
			err = errors.Join(err, fmt.Errorf("task %s: process %d did not end after SIGKILL", t.id, t.pid))
		}
	}
	return members, reported, err
}

// reap collects what of the task became our zombie, by pidfd only. Only now: a member that died
// while its parent still lived becomes our zombie (subreaper) only when that parent exits, and
// every process of the task has exited by now. It closes members and reported.
func (t *task) reap(members, reported, seen []member, escaped []int) {
	for _, m := range append(members, reported...) {
		if m.exited() {
			m.reap() // an orphan re-parented to us (subreaper): collect it, by its pidfd only
		}
		m.close()
	}
	// Processes seen when the task was stopped were all signalled; one may still be exiting
	// (its environ already gone, so the cookie scan missed it). Give them the kill deadline,
	// except those only reported (nothing may kill them), then reap.
	var dying []member
	for _, m := range seen {
		if !slices.Contains(escaped, m.pid) || t.layers.Cookie || t.cgDir != "" {
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
}

// collectOutput waits for the output pipes to be drained, and reports whether any was truncated.
// Every writer is dead now, except escapees nobody may kill (unkillable): don't wait for those.
// Without them the pipes reach their end once drained: give a late reader (a busy machine) time
// to drain them rather than drop their tail.
func collectOutput(captures []*capture, unkillable bool) (truncated bool) {
	drain := killWait
	if unkillable {
		drain = 200 * time.Millisecond
	}
	for _, c := range captures {
		select {
		case <-c.done:
		case <-time.After(drain):
			c.r.Close()
			<-c.done
		}
		c.r.Close()
		if c.truncated.Load() {
			truncated = true
		}
	}
	return truncated
}

// result completes res with the exit status (from the init's report under a PID namespace, else
// from Wait) and returns it with Run's error: the reason the task was stopped (not a timeout,
// which is an outcome in Result) and what could not be cleaned up.
func (t *task) result(res Result, status *initStatus, reason, cleanupErr error) (Result, error) {
	res.ExitCode = -1
	if status != nil {
		res.ExitCode = status.code
		if status.signal != 0 {
			res.Signaled, res.Signal, res.ExitCode = true, unix.SignalName(syscall.Signal(status.signal)), -1
		}
	} else if ps := t.cmd.ProcessState; ps != nil {
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
		t.s.log.Warn("task ended by its init's hard deadline, not by the supervisor", "task", t.id, "timeout", t.spec.Timeout)
	}
	return res, errors.Join(reason, cleanupErr)
}

func closeMembers(ms []member) {
	for _, m := range ms {
		m.close()
	}
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
	if t.cgDir != "" {
		for _, pid := range treeProcs(t.cgDir) { // the task's sub-cgroups too
			if pid == t.pid {
				continue
			}
			if m, err := openMember(pid, 0, t.inCgroup); err == nil {
				members = append(members, m)
			}
		}
		return members, nil
	}
	pids, err := proctab.PIDs()
	if err != nil {
		t.s.log.Warn("scan processes for the task cookie", "task", t.id, "err", err)
		return nil, nil
	}
	hasCookie := func(pid int) bool { return procCookie(pid) == t.cookie }
	for _, pid := range pids {
		if pid == t.pid || pid == t.s.self.pid || !hasCookie(pid) {
			continue
		}
		m, err := openMember(pid, 0, hasCookie)
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
// HYGIENE trap 6) to the whole task as far as the layers reach, each process once (signalAll).
func (t *task) terminate(members []member) {
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

// signalAll sends sig once to every process of the task the layers reach:
//   - under a PID namespace, to the init only, which passes it on to every process of its
//     namespace (kill(-1)): signalling them too would deliver it twice;
//   - otherwise to the process group (one kill(-pgid) reaches the command and every process that
//     kept its group), and, each through a verified pidfd, to the processes of the task cgroup
//     tree and to members that are not in the group (setsid escapees), and to the command itself
//     when it left its group.
//
// A process forked after the signal, or one that changes its group at that very moment, may
// miss a SIGTERM: it gets the SIGKILL after the grace.
func (t *task) signalAll(members []member, sig syscall.Signal) {
	if t.layers.PIDNamespace && !t.procDone {
		_ = t.cmd.Process.Signal(sig) // through the pidfd Go holds: never a reused pid
		return
	}
	targets, opened := t.cgroupTargets(members)
	defer closeMembers(opened)
	inGroup := func(pid int) bool {
		pi, err := readProc(pid)
		return err == nil && pi.pgid == t.pid
	}
	// The group id is the pid we started. Signal it only while that process has not been waited
	// for, or while a verified member still belongs to the group, so the id cannot have been
	// reused; never a pgid <= 1 (HYGIENE trap 2).
	grouped := make([]bool, len(targets))
	groupLive := !t.procDone
	for i, m := range targets {
		grouped[i] = inGroup(m.pid)
		groupLive = groupLive || grouped[i]
	}
	useGroup := (t.layers.ProcessGroup || t.spec.PTY) && !t.layers.PIDNamespace && t.pid > 1 && groupLive
	if useGroup {
		_ = syscall.Kill(-t.pid, sig)
	}
	if !t.procDone && !(useGroup && inGroup(t.pid)) {
		_ = t.cmd.Process.Signal(sig)
	}
	for i, m := range targets {
		if !(useGroup && grouped[i]) {
			_ = m.signal(sig)
		}
	}
}

// cgroupTargets returns members plus the other processes of the task cgroup tree (not the one we
// started), each once, the latter opened through verified pidfds (returned in opened, for the
// caller to close).
func (t *task) cgroupTargets(members []member) (targets, opened []member) {
	targets = append(targets, members...)
	if t.cgDir == "" {
		return targets, nil
	}
	have := map[int]bool{t.pid: true}
	for _, m := range members {
		have[m.pid] = true
	}
	for _, pid := range treeProcs(t.cgDir) {
		if have[pid] {
			continue
		}
		have[pid] = true
		if m, err := openMember(pid, 0, t.inCgroup); err == nil {
			targets = append(targets, m)
			opened = append(opened, m)
		}
	}
	return targets, opened
}

// waitGone polls until the started process was waited for, every member has exited and the
// task cgroup is empty, or the deadline passes, or cut is closed. It reports whether all are gone.
func (t *task) waitGone(members []member, waitCh <-chan struct{}, deadline time.Time, cut <-chan struct{}) bool {
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
		select {
		case <-cut:
			return false
		default:
		}
		time.Sleep(pollInterval(i)) // polling, bounded by the deadline
	}
}

// reapZombies collects zombies re-parented to us (subreaper) that belonged to this task: same
// process group or the task cgroup. Only these pids, each by its pidfd.
// It runs whatever the Subreaper layer says: PR_SET_CHILD_SUBREAPER is per process, so another
// Supervisor in the same program may have set it.
func (t *task) reapZombies() {
	children, err := proctab.OwnChildren()
	if err != nil {
		return
	}
	for _, pid := range children {
		if t.s.isChild(pid) {
			continue
		}
		pi, err := readProc(pid)
		if err != nil || pi.ppid != t.s.self.pid || pi.state != "Z" {
			continue
		}
		if pi.pgid != t.pid && !t.inCgroup(pid) {
			continue
		}
		if m, err := openMember(pid, pi.start, nil); err == nil {
			m.reap()
			m.close()
		}
	}
}

// inCgroup reports whether pid is in this task's cgroup or one below it (a sub-cgroup the task
// made); zombies still show theirs.
func (t *task) inCgroup(pid int) bool {
	if t.cgDir == "" {
		return false
	}
	tail := "/" + filepath.Base(filepath.Dir(t.cgDir)) + "/" + filepath.Base(t.cgDir)
	cg, _ := proctab.Cgroup(pid)
	return strings.HasSuffix(cg, tail) || strings.Contains(cg, tail+"/")
}

// removeCgroup waits until the task's cgroup tree is empty (killing again each round) and removes
// it, sub-cgroups the task made first.
func (t *task) removeCgroup() {
	if err := cgroupWaitEmpty(t.cgDir, time.Now().Add(killWait), true); err != nil {
		t.s.log.Warn("task cgroup not empty", "task", t.id, "err", err)
	}
	if err := cgroupRemoveTree(t.cgDir); err != nil {
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
