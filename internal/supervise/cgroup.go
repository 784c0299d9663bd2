package supervise

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/proxyline/proxyline/internal/proctab"
)

// cgroup v2 handling. Layout, under CgroupParent (default <our cgroup>/proxyline):
//
//	<CgroupParent>/<instance>.<owner-pidns>.<owner-pid>.<owner-starttime>/task-<n>
//
// The owner directory names its supervisor by (PID namespace, pid, start time), so a sweep can
// tell a dead owner's leftovers from a live one's, and leaves those of owners whose pids it
// cannot judge (another PID namespace) alone. Task cgroups are leaves with no controllers, used only
// for membership and cgroup.kill (HYGIENE trap 20).

// cgroupLeaf is the name of the leaf a worker should live in when it wants controllers for its
// tasks (HYGIENE trap 19): if our own cgroup has this name, tasks go next to it, not below it.
const cgroupLeaf = "supervisor"

// DefaultCgroupParent returns where task cgroups go by default: the directory "proxyline" in our
// own cgroup v2 (found by proctab, honouring the cgroup2 mount's root), or next to it when our
// cgroup is a leaf named "supervisor". It does not check that the directory is writable.
func DefaultCgroupParent() (string, error) {
	dir, err := proctab.OwnCgroupDir()
	if err != nil {
		return "", err
	}
	if filepath.Base(dir) == cgroupLeaf {
		dir = filepath.Dir(dir)
	}
	return filepath.Join(dir, "proxyline"), nil
}

// ownerDirName is the directory of one supervisor under CgroupParent:
// "<instance>.<pidns>.<pid>.<start>".
func ownerDirName(instance string, o ownerID) string {
	return fmt.Sprintf("%s.%d.%d.%d", instance, o.ns, o.pid, o.start)
}

// ownerDirRE is the exact name of a supervisor's cgroup directory; nothing else is ever swept.
// Numbers are canonical (no sign, no leading zero) so that every owner has one spelling; names
// of the earlier format without the namespace (<instance>.<pid>.<start>) do not match.
var ownerDirRE = regexp.MustCompile(`^([A-Za-z0-9_-]{1,64}-[0-9a-f]{6})\.([1-9][0-9]{0,19})\.([1-9][0-9]{0,18})\.(0|[1-9][0-9]{0,19})$`)

// parseOwnerDir parses "<instance>.<pidns>.<pid>.<start>".
func parseOwnerDir(base string) (instance string, o ownerID, ok bool) {
	m := ownerDirRE.FindStringSubmatch(base)
	if m == nil {
		return "", ownerID{}, false
	}
	if o, ok = parseOwnerNumbers(m[2], m[3], m[4]); !ok {
		return "", ownerID{}, false
	}
	return m[1], o, true
}

// parseOwnerNumbers converts the three numbers of an owner matched by a pattern of canonical
// decimals; false when one overflows.
func parseOwnerNumbers(ns, pid, start string) (ownerID, bool) {
	n, err1 := strconv.ParseUint(ns, 10, 64)
	p, err2 := strconv.Atoi(pid)
	s, err3 := strconv.ParseUint(start, 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || n == 0 || p <= 0 {
		return ownerID{}, false
	}
	return ownerID{ns: n, pid: p, start: s}, true
}

// cgroupProcs lists the pids in a cgroup (live processes only: zombies leave cgroup.procs).
func cgroupProcs(dir string) ([]int, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil, fmt.Errorf("read %s/cgroup.procs: %w", dir, err)
	}
	var pids []int
	for f := range bytes.FieldsSeq(b) {
		if pid, err := strconv.Atoi(string(f)); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// cgroupPopulated reads "populated" from cgroup.events.
func cgroupPopulated(dir string) (bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.events"))
	if err != nil {
		return false, fmt.Errorf("read %s/cgroup.events: %w", dir, err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "populated "); ok {
			return v != "0", nil
		}
	}
	return false, fmt.Errorf("read %s/cgroup.events: no populated line", dir)
}

// cgroupKill SIGKILLs every process in the cgroup and its descendants: through cgroup.kill
// (Linux 5.14), else by pid from cgroup.procs of the cgroup and of every cgroup below it,
// repeated until the cgroup is empty or the deadline passes (a fork racing the kill is caught by
// the next round).
func cgroupKill(dir string) error {
	err := os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0)
	if err == nil {
		return nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("write %s/cgroup.kill: %w", dir, err)
	}
	if _, err := os.Stat(dir); err != nil {
		return fmt.Errorf("kill cgroup %s: %w", dir, err)
	}
	for _, pid := range treeProcs(dir) {
		if pid > 1 {
			_ = unix.Kill(pid, unix.SIGKILL) // a pid in our own task cgroup is ours; ESRCH is fine
		}
	}
	return nil
}

// cgroupWaitEmpty polls cgroup.events until populated is 0 or the deadline passes, killing
// again each round when kill is set.
func cgroupWaitEmpty(dir string, deadline time.Time, kill bool) error {
	for i := 0; ; i++ {
		pop, err := cgroupPopulated(dir)
		if err != nil {
			return err
		}
		if !pop {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroup %s still holds %v after the deadline", dir, treeProcs(dir))
		}
		if kill {
			if err := cgroupKill(dir); err != nil {
				return err
			}
		}
		time.Sleep(pollInterval(i)) // polling, bounded by the deadline above
	}
}

// cgroupRemove removes an empty cgroup directory; a missing one is fine.
func cgroupRemove(dir string) error {
	err := unix.Rmdir(dir)
	if err == nil || errors.Is(err, syscall.ENOENT) {
		return nil
	}
	return fmt.Errorf("remove cgroup %s: %w", dir, err)
}

// cgroupRemoveTree removes dir and every cgroup below it, deepest first: rmdir of a cgroup that
// still has child cgroups fails with EBUSY (a task may make sub-cgroups of its own). The tree
// must hold no process any more. A missing directory is fine. It never follows a link (cgroupfs
// has none, and os.ReadDir reports a link as a non-directory).
func cgroupRemoveTree(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	var errs []error
	for _, e := range entries {
		if e.IsDir() {
			errs = append(errs, cgroupRemoveTree(filepath.Join(dir, e.Name())))
		}
	}
	errs = append(errs, cgroupRemove(dir))
	return errors.Join(errs...)
}

// cgroupKillRemove kills everything in dir and below (cgroup.kill reaches the descendants), waits
// until the tree is empty ("populated" counts the descendants too), and removes it depth-first.
func cgroupKillRemove(dir string, wait time.Duration) error {
	var errs []error
	if err := cgroupKill(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	if err := cgroupWaitEmpty(dir, time.Now().Add(wait), true); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	errs = append(errs, cgroupRemoveTree(dir))
	return errors.Join(errs...)
}

// pollInterval is the pause before poll round i+1: 100 µs doubling up to 10 ms, so a state that
// settles at once (a cgroup emptied by the exit we just saw) costs little and a slow one little
// CPU.
func pollInterval(i int) time.Duration {
	return min(100*time.Microsecond<<min(i, 7), 10*time.Millisecond)
}
