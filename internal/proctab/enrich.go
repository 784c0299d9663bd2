package proctab

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"
)

// FD classes returned in FD.Class.
const (
	ClassFile   = "file"             // a path in the file system
	ClassSocket = "socket"           // socket:[inode]
	ClassPipe   = "pipe"             // pipe:[inode]
	ClassPidfd  = "anon_inode:pidfd" // anon_inode:[pidfd], a process handle (Go >= 1.23 os.Process)
	ClassAnon   = "anon_inode"       // other anon_inode:... (eventpoll, eventfd, timerfd, ...)
	ClassDev    = "dev"              // a device under /dev
	ClassOther  = "other"            // anything else (memfd, deleted paths, namespaces, ...)
)

// FD is one open file descriptor of a process.
type FD struct {
	Num    int
	Target string // readlink of /proc/<pid>/fd/<num>, e.g. "pipe:[1234]", "/var/log/x"
	Class  string // one of the Class* constants
}

// ClassOf returns the class of an fd target.
func ClassOf(target string) string {
	switch {
	case strings.HasPrefix(target, "socket:"):
		return ClassSocket
	case strings.HasPrefix(target, "pipe:"):
		return ClassPipe
	case target == "anon_inode:[pidfd]" || target == "anon_inode:pidfd":
		return ClassPidfd
	case strings.HasPrefix(target, "anon_inode:"):
		return ClassAnon
	case strings.HasPrefix(target, "/dev/"):
		return ClassDev
	case strings.HasPrefix(target, "/") && !strings.HasSuffix(target, " (deleted)"):
		return ClassFile
	}
	return ClassOther
}

func procPath(pid int, name string) string { return "/proc/" + strconv.Itoa(pid) + "/" + name }

// FDs lists the open file descriptors of pid with their targets, sorted by number. An fd closed
// during the listing is skipped. (procfs lists targets without their numbers, and would list the
// directory twice to get both, so this is os.ReadDir plus os.Readlink.)
func FDs(pid int) ([]FD, error) {
	dir := procPath(pid, "fd")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list fds of pid %d: %w", pid, err)
	}
	fds := make([]FD, 0, len(ents))
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		t, err := os.Readlink(dir + "/" + e.Name())
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("read fd %d of pid %d: %w", n, pid, err)
		}
		fds = append(fds, FD{Num: n, Target: t, Class: ClassOf(t)})
	}
	slices.SortFunc(fds, func(a, b FD) int { return a.Num - b.Num })
	return fds, nil
}

// Cmdline returns the argument vector of pid (empty for kernel threads and zombies).
func Cmdline(pid int) ([]string, error) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return nil, fmt.Errorf("open pid %d: %w", pid, err)
	}
	args, err := p.CmdLine()
	if err != nil {
		return nil, fmt.Errorf("read cmdline of pid %d: %w", pid, err)
	}
	return args, nil
}

// Environ returns the environment of pid as KEY=VALUE strings. Reading another user's
// environment needs the same uid or CAP_SYS_PTRACE: the error then wraps os.ErrPermission.
func Environ(pid int) ([]string, error) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return nil, fmt.Errorf("open pid %d: %w", pid, err)
	}
	env, err := p.Environ()
	if err != nil {
		return nil, fmt.Errorf("read environ of pid %d: %w", pid, err)
	}
	return env, nil
}

// HasEnv reports whether the environment of pid contains the exact entry kv ("KEY=VALUE").
// It reads the file once and does not split it into strings.
func HasEnv(pid int, kv string) (bool, error) {
	b, err := os.ReadFile(procPath(pid, "environ"))
	if err != nil {
		return false, fmt.Errorf("read environ of pid %d: %w", pid, err)
	}
	return envContains(b, kv), nil
}

// envContains reports whether the NUL-separated environment block b contains entry kv.
func envContains(b []byte, kv string) bool {
	for len(b) > 0 {
		i := bytes.IndexByte(b, 0)
		var e []byte
		if i < 0 {
			e, b = b, nil
		} else {
			e, b = b[:i], b[i+1:]
		}
		if string(e) == kv {
			return true
		}
	}
	return false
}

// Cgroup returns the cgroup v2 name of pid: the "0::" line of /proc/<pid>/cgroup, e.g.
// "/killtest/run-1", relative to the caller's cgroup namespace (CgroupDir finds its directory).
// Hybrid hosts also list cgroup v1 hierarchies ("4:memory:/x"); only the v2 line counts. It is ""
// when the process has no v2 entry.
func Cgroup(pid int) (string, error) {
	b, err := os.ReadFile(procPath(pid, "cgroup"))
	if err != nil {
		return "", fmt.Errorf("read cgroup of pid %d: %w", pid, err)
	}
	return cgroupV2Line(b), nil
}

// cgroupV2Line returns the name in the "0::" line of a /proc/<pid>/cgroup text, "" if none.
func cgroupV2Line(b []byte) string {
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "0::"); ok {
			return rest
		}
	}
	return ""
}

// Wchan returns the kernel function pid sleeps in, or "" when it is running, gone or the
// kernel hides it.
func Wchan(pid int) string {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return ""
	}
	w, err := p.Wchan()
	if err != nil || w == "0" {
		return ""
	}
	return w
}

// Memory is the resident memory of a process from /proc/<pid>/status, in bytes.
type Memory struct {
	RSS     int64 // VmRSS
	RSSAnon int64 // RssAnon: anonymous pages, the part that grows with leaks
}

// RSSAnon returns the anonymous resident memory of pid in bytes, falling back to VmRSS when the
// kernel does not report RssAnon.
func RSSAnon(pid int) (int64, error) {
	m, err := MemoryOf(pid)
	if err != nil {
		return 0, err
	}
	if m.RSSAnon == 0 {
		return m.RSS, nil
	}
	return m.RSSAnon, nil
}

// MemoryOf returns the resident memory of pid.
func MemoryOf(pid int) (Memory, error) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return Memory{}, fmt.Errorf("open pid %d: %w", pid, err)
	}
	s, err := p.NewStatus()
	if err != nil {
		return Memory{}, fmt.Errorf("read status of pid %d: %w", pid, err)
	}
	return Memory{RSS: int64(s.VmRSS), RSSAnon: int64(s.RssAnon)}, nil
}

// StatusUIDs returns the user ids of the Uid line of /proc/<pid>/status: real, effective, saved
// set and file system. Unlike the environment, the status file is readable for any process.
func StatusUIDs(pid int) ([]int, error) {
	path := procPath(pid, "status")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read uids of pid %d: %w", pid, err)
	}
	return parseUIDs(string(b), path)
}

// parseUIDs parses the Uid line of a status text read from path (named in errors).
func parseUIDs(status, path string) ([]int, error) {
	rest, ok := statusLine(status, "Uid")
	if !ok {
		return nil, fmt.Errorf("%s: no Uid line", path)
	}
	var uids []int
	for _, f := range strings.Fields(rest) {
		uid, err := strconv.Atoi(f)
		if err != nil || uid < 0 {
			return nil, fmt.Errorf("%s: malformed Uid line %q", path, strings.TrimSpace(rest))
		}
		uids = append(uids, uid)
	}
	if len(uids) == 0 {
		return nil, fmt.Errorf("%s: empty Uid line", path)
	}
	return uids, nil
}

// WithEnv lists the live processes (not zombies, which have no environment to read) other than
// the caller whose environment holds the exact entry kv: the scan by cookie that test harnesses
// and killtest's self-check use to find what a run left behind. Processes that vanish or
// cannot be read during the scan are skipped.
func WithEnv(kv string) ([]Proc, error) {
	procs, err := NewReader().Snapshot(nil)
	if err != nil {
		return nil, err
	}
	self := os.Getpid()
	var out []Proc
	for _, p := range procs {
		if p.PID == self || p.State == 'Z' {
			continue
		}
		if has, err := HasEnv(p.PID, kv); err == nil && has {
			out = append(out, p)
		}
	}
	return out, nil
}

// UID returns the user that owns pid: the owner of /proc/<pid>, its effective user id (root for
// a process that is not dumpable). The error wraps os.ErrNotExist when the process is gone.
func UID(pid int) (int, error) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/"+strconv.Itoa(pid), &st); err != nil {
		return 0, &os.PathError{Op: "stat", Path: "/proc/" + strconv.Itoa(pid), Err: err}
	}
	return int(st.Uid), nil
}
