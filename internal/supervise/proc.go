package supervise

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/proxyline/proxyline/internal/proctab"
)

// procInfo is what the supervisor reads about one process.
type procInfo struct {
	pid   int
	ppid  int
	pgid  int
	start uint64 // stat field 22, clock ticks since boot
	state string
}

// readProc reads pid's stat line through proctab.
func readProc(pid int) (procInfo, error) {
	st, err := proctab.Stat(pid)
	if err != nil {
		return procInfo{}, err
	}
	return infoOf(st), nil
}

// infoOf is what the supervisor needs of a stat line.
func infoOf(st proctab.Proc) procInfo {
	return procInfo{pid: st.PID, ppid: st.PPID, pgid: st.PGID, start: st.StartTime, state: string(rune(st.State))}
}

// procCookie returns the raw cookie in /proc/<pid>/environ ("" if none or unreadable: zombies
// and kernel threads have an empty environ).
func procCookie(pid int) string {
	env, err := proctab.Environ(pid)
	if err != nil {
		return ""
	}
	v, _ := cookieFromEnviron(env)
	return v
}

// alive reports whether pid runs and still has the given start time (so it is the same process).
func alive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	pi, err := readProc(pid)
	return err == nil && pi.start == start && pi.state != "Z" && pi.state != "X"
}

// member is one verified process of a task, held by a pidfd so it cannot be confused with a
// later process that reuses its pid.
type member struct {
	pid   int
	start uint64
	fd    int // pidfd
}

// openMember opens a pidfd for pid and then verifies, through /proc, that the process behind it
// is the one expected: same start time (when start != 0) and check(pid) true. Verifying after
// opening closes the race: if the pid was reused before pidfd_open, the check sees the new
// process and fails; if it is reused after, the pidfd still names the old one.
func openMember(pid int, start uint64, check func(pid int) bool) (member, error) {
	if pid <= 1 {
		return member{}, fmt.Errorf("refuse to act on pid %d", pid)
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return member{}, fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	pi, err := readProc(pid)
	if err != nil || (start != 0 && pi.start != start) || (check != nil && !check(pid)) {
		unix.Close(fd)
		return member{}, fmt.Errorf("process %d changed identity: %w", pid, errGone)
	}
	return member{pid: pid, start: pi.start, fd: fd}, nil
}

var errGone = errors.New("process gone")

func (m member) signal(sig unix.Signal) error {
	err := unix.PidfdSendSignal(m.fd, sig, nil, 0)
	if errors.Is(err, unix.ESRCH) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("signal %v to %d: %w", sig, m.pid, err)
	}
	return nil
}

// exited reports whether the process has ended (a zombie counts as ended).
func (m member) exited() bool {
	fds := []unix.PollFd{{Fd: int32(m.fd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 0)
	return err == nil && n > 0
}

// reap collects the exit status if the process is our child (after re-parenting to us as
// subreaper); for anyone else's process it is a no-op (ECHILD). It only ever reaps this one
// process, never wait4(-1) (HYGIENE trap 13).
func (m member) reap() {
	var info unix.Siginfo
	_ = unix.Waitid(unix.P_PIDFD, m.fd, &info, unix.WEXITED|unix.WNOHANG, nil)
}

func (m member) close() { unix.Close(m.fd) }
