package supervise

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"
)

// cgroup v2 handling. Layout, under CgroupParent (default <our cgroup>/proxyline):
//
//	<CgroupParent>/<name>.<owner-pid>.<owner-starttime>/task-<n>
//
// The owner directory names its supervisor by (pid, start time), so a sweep can tell a dead
// owner's leftovers from a live one's. Task cgroups are leaves with no controllers, used only
// for membership and cgroup.kill (HYGIENE trap 20).

// cgroupLeaf is the name of the leaf a worker should live in when it wants controllers for its
// tasks (HYGIENE trap 19): if our own cgroup has this name, tasks go next to it, not below it.
const cgroupLeaf = "supervisor"

// DefaultCgroupParent finds the cgroup2 mount in /proc/self/mountinfo and our own cgroup in
// /proc/self/cgroup, and returns where task cgroups go by default. It does not check that the
// directory is writable.
func DefaultCgroupParent() (string, error) {
	mounts, err := procfs.GetProcMounts(os.Getpid())
	if err != nil {
		return "", fmt.Errorf("read mountinfo: %w", err)
	}
	var mnt *procfs.MountInfo
	for _, m := range mounts {
		if m.FSType == "cgroup2" {
			mnt = m
			break
		}
	}
	if mnt == nil {
		return "", errors.New("no cgroup2 mount in /proc/self/mountinfo")
	}
	own := procCgroup2(os.Getpid())
	if own == "" {
		return "", errors.New("no cgroup v2 entry (0::) in /proc/self/cgroup")
	}
	rel := own
	if mnt.Root != "/" {
		rel = strings.TrimPrefix(own, mnt.Root)
	}
	dir := filepath.Join(mnt.MountPoint, filepath.Clean("/"+rel))
	if filepath.Base(dir) == cgroupLeaf {
		dir = filepath.Dir(dir)
	}
	return filepath.Join(dir, "proxyline"), nil
}

// ownerDirName is the directory of one supervisor under CgroupParent.
func ownerDirName(name string, pid int, start uint64) string {
	return fmt.Sprintf("%s.%d.%d", name, pid, start)
}

// parseOwnerDir parses "<name>.<pid>.<start>".
func parseOwnerDir(base string) (pid int, start uint64, ok bool) {
	i := strings.LastIndexByte(base, '.')
	if i <= 0 {
		return 0, 0, false
	}
	j := strings.LastIndexByte(base[:i], '.')
	if j <= 0 {
		return 0, 0, false
	}
	p, err1 := strconv.Atoi(base[j+1 : i])
	s, err2 := strconv.ParseUint(base[i+1:], 10, 64)
	if err1 != nil || err2 != nil || p <= 0 {
		return 0, 0, false
	}
	return p, s, true
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
// (Linux 5.14), else by pid from cgroup.procs, repeated until the cgroup is empty or the
// deadline passes (a fork racing the kill is caught by the next round).
func cgroupKill(dir string) error {
	err := os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0)
	if err == nil {
		return nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("write %s/cgroup.kill: %w", dir, err)
	}
	pids, err := cgroupProcs(dir)
	if err != nil {
		return err
	}
	for _, pid := range pids {
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
			pids, _ := cgroupProcs(dir)
			return fmt.Errorf("cgroup %s still holds %v after the deadline", dir, pids)
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

// cgroupKillRemove kills everything in dir and below, waits until empty, and removes the tree.
func cgroupKillRemove(dir string, wait time.Duration) error {
	entries, _ := os.ReadDir(dir)
	var errs []error
	for _, e := range entries {
		if e.IsDir() {
			errs = append(errs, cgroupKillRemove(filepath.Join(dir, e.Name()), wait))
		}
	}
	if err := cgroupKill(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	if err := cgroupWaitEmpty(dir, time.Now().Add(wait), true); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	errs = append(errs, cgroupRemove(dir))
	return errors.Join(errs...)
}

// pollInterval is the pause before poll round i+1: 100 µs doubling up to 10 ms, so a state that
// settles at once (a cgroup emptied by the exit we just saw) costs little and a slow one little
// CPU.
func pollInterval(i int) time.Duration {
	return min(100*time.Microsecond<<min(i, 7), 10*time.Millisecond)
}
