package proctab

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
)

// PID namespaces. A pid means something only in one PID namespace: a process reading a /proc
// mounted for another namespace, or judging a pid recorded by a process of another namespace,
// would take one process for another. A namespace is named by the inode number of its
// /proc/<pid>/ns/pid link ("pid:[4026531836]"), the same number for every member, unique among
// the namespaces that exist (a dead namespace's number may be given to a later one).

// InitialPIDNamespace is the inode number of the machine's initial PID namespace: a constant of
// the kernel (PROC_PID_INIT_INO in include/linux/proc_ns.h, since Linux 3.8). A process in it
// sees every process of the machine in a /proc of its own namespace.
const InitialPIDNamespace uint64 = 0xEFFFFFFC

// ParsePIDNamespaceLink parses the target of a /proc/<pid>/ns/pid link, "pid:[<inode>]", with
// the inode a canonical decimal above 0.
func ParsePIDNamespaceLink(target string) (uint64, error) {
	digits, ok := strings.CutPrefix(target, "pid:[")
	if ok {
		digits, ok = strings.CutSuffix(digits, "]")
	}
	if !ok || digits == "" || digits[0] == '0' {
		return 0, fmt.Errorf("pid namespace link %q: want pid:[<inode>]", target)
	}
	ino, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("pid namespace link %q: %w", target, err)
	}
	if strconv.FormatUint(ino, 10) != digits {
		return 0, fmt.Errorf("pid namespace link %q: not a canonical number", target)
	}
	return ino, nil
}

// PIDNamespace returns the PID namespace of pid (see ParsePIDNamespaceLink), as seen through
// /proc. Reading another user's process needs the right to ptrace-read it (root, or the same
// user): the error then wraps fs.ErrPermission; it wraps fs.ErrNotExist when pid is gone.
func PIDNamespace(pid int) (uint64, error) {
	return readPIDNamespace(procPath(pid, "ns/pid"))
}

// OwnPIDNamespace returns the PID namespace of the calling process (/proc/self/ns/pid). It is
// right even when /proc belongs to another namespace that contains ours (/proc/self names the
// caller in any procfs that can see it); use CheckOwnProc before judging pids read there.
func OwnPIDNamespace() (uint64, error) {
	return readPIDNamespace("/proc/self/ns/pid")
}

func readPIDNamespace(path string) (uint64, error) {
	target, err := os.Readlink(path)
	if err != nil {
		return 0, fmt.Errorf("read pid namespace: %w", err)
	}
	return ParsePIDNamespaceLink(target)
}

// ErrForeignProc says that /proc is not the view of the caller's own PID namespace: the pids in
// it name other processes than the caller's pids do.
var ErrForeignProc = errors.New("/proc belongs to another PID namespace")

// CheckOwnProc returns nil when /proc is the view of the caller's own PID namespace: /proc/self
// links to the caller's own pid (os.Getpid). In a PID namespace whose /proc was not remounted
// (unshare --pid without --mount-proc) /proc/self names the caller by its pid in the outer
// namespace; in a namespace that cannot see the caller at all, /proc/self does not exist. Either
// way the error wraps ErrForeignProc and says how to fix it.
func CheckOwnProc() error {
	self := os.Getpid()
	target, err := os.Readlink("/proc/self")
	if err != nil {
		return fmt.Errorf("%w: readlink /proc/self: %v (mount a /proc of this namespace: unshare --mount-proc, or mount -t proc proc /proc)", ErrForeignProc, err)
	}
	if target != strconv.Itoa(self) {
		return fmt.Errorf("%w: /proc/self is %q but our pid is %d (mount a /proc of this namespace: unshare --mount-proc, or mount -t proc proc /proc)", ErrForeignProc, target, self)
	}
	return nil
}

// PIDNamespaces lists the PID namespaces that have at least one process visible in /proc, and
// how many processes' namespaces could not be read. procNS is the namespace /proc belongs to
// (the caller's, checked with CheckOwnProc). A process whose namespace link may not be read
// (another user's, or one with capabilities we lack, such as a machine's PID 1) but whose NSpid
// line (readable by all) has a single entry is in procNS; any other unreadable one is counted.
// A process that ends during the listing is skipped. With unreadable > 0, a namespace missing
// from the set may still be alive.
func PIDNamespaces(procNS uint64) (live map[uint64]bool, unreadable int, err error) {
	pids, err := PIDs()
	if err != nil {
		return nil, 0, err
	}
	live = map[uint64]bool{}
	for _, pid := range pids {
		ns, err := PIDNamespace(pid)
		switch {
		case err == nil:
			live[ns] = true
		case errors.Is(err, fs.ErrNotExist):
			// ended meanwhile (or a zombie, whose namespace links are gone: it counts for nothing)
		default:
			b, serr := os.ReadFile(procPath(pid, "status"))
			switch {
			case serr == nil && len(ParseNSpid(string(b))) == 1:
				live[procNS] = true
			case errors.Is(serr, fs.ErrNotExist):
			default:
				unreadable++
			}
		}
	}
	return live, unreadable, nil
}

// PIDs lists the processes in /proc (its numeric entries), without reading anything of them:
// cheaper than a Snapshot when each process is read some other way anyway. A process may end
// between the listing and its reading.
func PIDs() ([]int, error) {
	d, err := os.Open("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var pids []int
	for _, n := range names {
		if pid, err := strconv.Atoi(n); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// ParseNSpid returns the pids of the NSpid line of a /proc/<pid>/status text, from the
// namespace of that /proc down to the process's own; nil when there is none or it is malformed.
func ParseNSpid(status string) []int {
	rest, ok := statusLine(status, "NSpid")
	if !ok {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(rest) {
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return nil
		}
		pids = append(pids, n)
	}
	return pids
}

// statusLine returns what follows "key:" on the first such line of a /proc/<pid>/status text.
func statusLine(status, key string) (string, bool) {
	for line := range strings.SplitSeq(status, "\n") {
		if rest, ok := strings.CutPrefix(line, key+":"); ok {
			return rest, true
		}
	}
	return "", false
}
