package proctab

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// The calling process, through /proc/self: right even when /proc belongs to another PID
// namespace that can see the caller (/proc/self names the caller in any procfs that shows it).

// selfTask is the directory of the calling process's threads.
const selfTask = "/proc/self/task"

// OwnChildren lists the children of the calling process from /proc/self/task/<tid>/children: a
// handful of reads instead of a scan of the whole process table. An orphan re-parented to the
// caller as subreaper appears under one of its threads. A thread that ends during the listing
// (its children file is gone) is skipped; so are all children when the kernel lacks the files
// (CONFIG_PROC_CHILDREN).
func OwnChildren() ([]int, error) {
	tasks, err := os.ReadDir(selfTask)
	if err != nil {
		return nil, fmt.Errorf("list own threads: %w", err)
	}
	var pids []int
	for _, t := range tasks {
		b, err := os.ReadFile(selfTask + "/" + t.Name() + "/children")
		if err != nil {
			continue // the thread ended
		}
		pids = appendChildren(pids, b)
	}
	return pids, nil
}

// appendChildren appends the pids of a children file ("12 345 ") to pids; anything that is not
// a number is skipped.
func appendChildren(pids []int, b []byte) []int {
	for f := range strings.FieldsSeq(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// OwnStat reads the calling process's stat line, /proc/self/stat.
func OwnStat() (Proc, error) {
	const path = "/proc/self/stat"
	b, err := os.ReadFile(path)
	if err != nil {
		return Proc{}, fmt.Errorf("read own stat: %w", err)
	}
	p, err := ParseStat(b)
	if err != nil {
		return Proc{}, fmt.Errorf("parse %s: %w", path, err)
	}
	return p, nil
}

// OwnNSpid returns the NSpid line of /proc/self/status (see ParseNSpid): the caller's pid in each
// PID namespace from that of /proc down to its own. It is nil without an error when the kernel
// writes no NSpid line (before Linux 4.1) or a malformed one.
func OwnNSpid() ([]int, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil, fmt.Errorf("read own NSpid: %w", err)
	}
	return ParseNSpid(string(b)), nil
}

// CheckOwnEnviron returns nil when /proc/self/environ exists: a /proc is mounted that shows
// processes' environments, which scans by cookie (HasEnv, WithEnv) read. It does not say whether
// /proc is the view of the caller's own PID namespace (CheckOwnProc does).
func CheckOwnEnviron() error {
	if _, err := os.Stat("/proc/self/environ"); err != nil {
		return fmt.Errorf("check own environ: %w", err)
	}
	return nil
}
