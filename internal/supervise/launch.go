package supervise

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/creack/pty"
)

// The start of a task: its command with every layer's attributes (launch, prepare), then the
// process and the goroutines that watch it (running, start).

// launch is a task's command, ready to start, and the files made for it.
type launch struct {
	cmd        *exec.Cmd
	path       string      // the program, resolved by LookPath
	childFiles []*os.File  // the child's ends of pipes, terminal, cgroup: closed once it has them
	readers    []*os.File  // our ends of its output: owned by the captures once it runs
	writers    []io.Writer // where each reader's output goes
	reportR    *os.File    // our end of the init's report pipe (PID namespace layer), else nil
	lifeline   *os.File    // our end of the init's lifeline (Spec.TaskDir), else nil: never written
}

// closeChildFiles closes the child's ends (after Start, or when it never starts).
func (l *launch) closeChildFiles() {
	for _, f := range l.childFiles {
		f.Close()
	}
	l.childFiles = nil
}

// release undoes prepare once the task is over (or never started): the report pipe, the task
// cgroup (waited for until empty, then removed), the child's files.
func (t *task) release(l *launch) {
	if l.reportR != nil {
		l.reportR.Close()
	}
	if l.lifeline != nil {
		l.lifeline.Close()
	}
	if t.cgDir != "" {
		t.removeCgroup()
	}
	l.closeChildFiles()
}

// prepare builds the task's command with every layer's attributes: /dev/null or a terminal in,
// our own pipes out, process group, parent-death signal, task cgroup, init and PID namespace. On
// error it has released what it made.
func (t *task) prepare() (*launch, error) {
	spec := t.spec
	// LookPath also checks that a path with a slash is an executable file, so a typo fails
	// here rather than as exit status 127 from inside a task init.
	path, err := exec.LookPath(spec.Path)
	if err != nil {
		return nil, fmt.Errorf("%w: find %s: %w", ErrStart, spec.Path, err)
	}
	env := spec.Env
	if env == nil {
		env = os.Environ()
	}
	env = withEnv(env, []string{CookieEnv, initEnv, deadlineEnv, taskDirEnv}, CookieEnv+"="+t.cookie)
	if err := t.checkTaskDir(); err != nil {
		return nil, err
	}
	l := &launch{path: path, writers: []io.Writer{spec.Stdout, spec.Stderr}}
	l.cmd = &exec.Cmd{Path: path, Args: append([]string{spec.Path}, spec.Args...), Dir: spec.Dir, Env: env,
		SysProcAttr: &syscall.SysProcAttr{}}
	err = t.attachStreams(l)
	if err == nil && t.layers.Pdeathsig {
		l.cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	if err == nil && t.layers.Cgroup {
		err = t.joinCgroup(l)
	}
	if err == nil && t.layers.PIDNamespace {
		err = t.useInit(l)
	}
	if err != nil {
		closeAll(l.readers)
		t.release(l)
		return nil, err
	}
	return l, nil
}

// attachStreams gives the command /dev/null or a pseudo-terminal as stdin, and our own pipes out:
// files, not Go's copying pipes, so a descendant holding them cannot make Wait hang (HYGIENE trap
// 14). Without a terminal the command gets its own process group (ProcessGroup layer); with one,
// its own session.
func (t *task) attachStreams(l *launch) error {
	sys := l.cmd.SysProcAttr
	if t.spec.PTY {
		master, tty, err := pty.Open()
		if err != nil {
			return fmt.Errorf("%w: open pseudo-terminal for %s: %w", ErrStart, t.spec.Path, err)
		}
		l.childFiles = append(l.childFiles, tty)
		l.cmd.Stdin, l.cmd.Stdout, l.cmd.Stderr = tty, tty, tty
		sys.Setsid, sys.Setctty, sys.Ctty = true, true, 0
		l.readers = []*os.File{master}
		return nil
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		return fmt.Errorf("%w: open %s: %w", ErrStart, os.DevNull, err)
	}
	l.childFiles = append(l.childFiles, null)
	l.cmd.Stdin = null
	for i := range 2 {
		r, w, err := os.Pipe()
		if err != nil {
			return fmt.Errorf("%w: create output pipe for %s: %w", ErrStart, t.spec.Path, err)
		}
		l.childFiles = append(l.childFiles, w)
		l.readers = append(l.readers, r)
		if i == 0 {
			l.cmd.Stdout = w
		} else {
			l.cmd.Stderr = w
		}
	}
	sys.Setpgid = t.layers.ProcessGroup
	return nil
}

// joinCgroup makes the task's cgroup and has the command born in it (clone3 CLONE_INTO_CGROUP).
func (t *task) joinCgroup(l *launch) error {
	dir := filepath.Join(t.s.ownerDir, fmt.Sprintf("task-%d", t.seq))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("%w: create task cgroup %s: %w", ErrStart, dir, err)
	}
	t.cgDir = dir // removed by release from now on
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("%w: open task cgroup %s: %w", ErrStart, dir, err)
	}
	l.childFiles = append(l.childFiles, f)
	l.cmd.SysProcAttr.UseCgroupFD, l.cmd.SysProcAttr.CgroupFD = true, int(f.Fd())
	return nil
}

// useInit starts the task's init (this binary, see MaybeInit) instead of the command, as PID 1
// of a new PID namespace, with a pipe on fd 3 for its report and, with a Spec.Timeout, its own
// hard deadline (HYGIENE trap 23; see deadlineMargin).
func (t *task) useInit(l *launch) error {
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("%w: create init report pipe: %w", ErrStart, err)
	}
	l.reportR = r
	l.childFiles = append(l.childFiles, w)
	cmd, spec := l.cmd, t.spec
	cmd.ExtraFiles = []*os.File{w}
	cmd.Path = selfExe
	cmd.Args = append([]string{initArg0, l.path}, spec.Args...)
	if _, ok := os.LookupEnv("GORACE"); ok && spec.Env == nil || envHas(spec.Env, "GORACE") {
		cmd.Env = append(cmd.Env, initEnv+"=run-keep-gorace")
	} else {
		cmd.Env = append(cmd.Env, initEnv+"=run", noRaceSleep)
	}
	if spec.Timeout > 0 {
		cmd.Env = append(cmd.Env, deadlineEnv+"="+initDeadlineFor(spec.Timeout, t.s.grace).String())
	}
	if spec.TaskDir != "" {
		if err := t.useLifeline(l); err != nil {
			return err
		}
	}
	setPIDNamespace(cmd.SysProcAttr)
	return nil
}

// useLifeline hands the init the task directory and the read end of a pipe whose write end only
// this process holds (fd 4): when this process dies, by any signal, the kernel closes it and the
// init reads end-of-file, kills its namespace, removes the directory and exits. The init then
// has no parent-death signal: a SIGKILL from the kernel would leave it no time to remove
// anything, and the lifeline says the same, for the whole process rather than one thread.
func (t *task) useLifeline(l *launch) error {
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("%w: create init lifeline: %w", ErrStart, err)
	}
	l.lifeline = w
	l.childFiles = append(l.childFiles, r)
	l.cmd.ExtraFiles = append(l.cmd.ExtraFiles, r)
	l.cmd.Env = append(l.cmd.Env, taskDirEnv+"="+t.spec.TaskDir)
	l.cmd.SysProcAttr.Pdeathsig = 0
	return nil
}

// checkTaskDir refuses a Spec.TaskDir that MkdirTask of this supervisor did not name: the init
// removes it, so it must be ours.
func (t *task) checkTaskDir() error {
	dir := t.spec.TaskDir
	if dir == "" {
		return nil
	}
	o, ok := parseTaskDir(filepath.Base(dir))
	if !filepath.IsAbs(dir) || !ok || o.owner != t.s.owner || o.instance != t.s.instance {
		return fmt.Errorf("%w: task directory %s was not made by this supervisor's MkdirTask", ErrStart, dir)
	}
	return nil
}

// running is a started task's process and what watches it.
type running struct {
	waitCh   chan struct{}     // closed when cmd.Wait returned
	reportCh <-chan initStatus // the init's report (closed without one when there is no init); nil once read
	status   *initStatus       // the command's status from the init's report, once read
	captures []*capture        // one per output stream
}

// start starts the command, registers it as our child (under startMu, so the orphan reaper never
// takes it for an orphan), and starts watching it: its output, its Wait, the init's report. The
// caller must hold its OS thread locked (Pdeathsig) and call removeChild when done.
func (t *task) start(l *launch) (*running, error) {
	t.s.startMu.Lock()
	err := l.cmd.Start()
	if err == nil {
		t.cmd, t.pid = l.cmd, l.cmd.Process.Pid
		t.s.addChild(t.pid)
	}
	t.s.startMu.Unlock()
	l.closeChildFiles()
	if err != nil {
		closeAll(l.readers)
		return nil, fmt.Errorf("%w: start %s: %w", ErrStart, t.spec.Path, err)
	}
	r := &running{waitCh: make(chan struct{})}
	limit := cmp.Or(t.spec.OutputLimit, defaultOutputLimit)
	for i, rd := range l.readers {
		r.captures = append(r.captures, startCapture(rd, l.writers[i], limit))
	}
	go func() {
		_ = l.cmd.Wait() // the status is in cmd.ProcessState
		close(r.waitCh)
	}()
	reportCh := make(chan initStatus, 1)
	r.reportCh = reportCh
	if l.reportR != nil {
		go func() {
			defer close(reportCh)
			line, err := bufio.NewReader(l.reportR).ReadString('\n')
			if st, perr := parseInitStatus(line); err == nil && perr == nil {
				reportCh <- st
			}
		}()
	} else {
		close(reportCh)
	}
	if t.spec.Started != nil {
		t.spec.Started(t.pid)
	}
	return r, nil
}

func closeAll(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}
