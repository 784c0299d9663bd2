package proctab

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/prometheus/procfs"
)

// cgroup v2 paths and directories. A cgroup has a name, as /proc/<pid>/cgroup shows it ("/a/b",
// relative to the reading process's cgroup namespace), and a directory under each cgroup2 mount
// that shows it. A mount shows the subtree below its root (field 4 of /proc/self/mountinfo): "/"
// for a plain mount, a cgroup below it for a bind mount of one or for a mount made in another
// cgroup namespace. So the directory of "/a/b" under a mount whose root is "/a" is
// <mount point>/b, not <mount point>/a/b.

// CgroupMount is a cgroup2 mount of the calling process's mount namespace.
type CgroupMount struct {
	// MountPoint is where the mount is, e.g. /sys/fs/cgroup/unified.
	MountPoint string
	// Root is the cgroup shown at MountPoint, named as /proc/<pid>/cgroup names cgroups: "/" for
	// a plain mount. It starts with "/.." when the mount shows more than our cgroup namespace.
	Root string
}

// CgroupMounts returns the cgroup2 mounts of the calling process, in /proc/self/mountinfo order.
func CgroupMounts() ([]CgroupMount, error) {
	mounts, err := procfs.GetMounts()
	if err != nil {
		return nil, fmt.Errorf("read /proc/self/mountinfo: %w", err)
	}
	var out []CgroupMount
	for _, m := range mounts {
		if m.FSType == "cgroup2" {
			out = append(out, CgroupMount{MountPoint: unescapeMountinfo(m.MountPoint), Root: unescapeMountinfo(m.Root)})
		}
	}
	return out, nil
}

// Dir returns the directory of cgroup cg under this mount, or false when the mount does not show
// it (cg is not Root or below it, or either names a cgroup outside our cgroup namespace).
func (m CgroupMount) Dir(cg string) (string, bool) {
	rel, ok := below(m.Root, cg)
	if !ok {
		return "", false
	}
	return filepath.Join(m.MountPoint, rel), true
}

// Cgroup returns the name of the cgroup whose directory is dir, an absolute path, or false when
// dir is not MountPoint or below it (or the mount's root is outside our cgroup namespace).
func (m CgroupMount) Cgroup(dir string) (string, bool) {
	rel, ok := below(m.MountPoint, filepath.Clean(dir))
	if !ok || !clean(m.Root) {
		return "", false
	}
	return filepath.Join(m.Root, rel), true
}

// below returns p relative to the clean absolute path root ("" when equal), or false when p is
// not root or below it, or either is not a clean absolute path without "..".
func below(root, p string) (string, bool) {
	if !clean(root) || !clean(p) {
		return "", false
	}
	if root == "/" {
		return p[1:], true
	}
	if p == root {
		return "", true
	}
	rest, ok := strings.CutPrefix(p, root+"/")
	return rest, ok
}

// clean reports whether p is a clean absolute path with no ".." element.
func clean(p string) bool {
	return filepath.IsAbs(p) && filepath.Clean(p) == p && !strings.Contains(p+"/", "/../")
}

// CgroupDir returns the directory of cgroup cg (as /proc/<pid>/cgroup names it) under the first
// cgroup2 mount that shows it.
func CgroupDir(cg string) (string, error) {
	mounts, err := CgroupMounts()
	if err != nil {
		return "", err
	}
	if len(mounts) == 0 {
		return "", errors.New("no cgroup2 mount in /proc/self/mountinfo")
	}
	for _, m := range mounts {
		if dir, ok := m.Dir(cg); ok {
			return dir, nil
		}
	}
	return "", fmt.Errorf("cgroup %s: no cgroup2 mount shows it (mounts: %v)", cg, mounts)
}

// OwnCgroupDir returns the directory of the calling process's own cgroup v2. It reads
// /proc/self/cgroup, never /proc/<getpid()>: in a PID namespace whose /proc is an outer
// namespace's (a task under a PID namespace), that pid names another process.
func OwnCgroupDir() (string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", fmt.Errorf("read own cgroup: %w", err)
	}
	cg := cgroupV2Line(b)
	if cg == "" {
		return "", errors.New("no cgroup v2 entry (0::) in /proc/self/cgroup")
	}
	return CgroupDir(cg)
}

// CgroupOfDir returns the name of the cgroup whose directory is dir (what /proc/<pid>/cgroup
// shows for the processes in it), through the cgroup2 mount that holds dir: the one with the
// deepest mount point above it.
func CgroupOfDir(dir string) (string, error) {
	if !filepath.IsAbs(dir) {
		return "", fmt.Errorf("cgroup dir %s: not an absolute path", dir)
	}
	mounts, err := CgroupMounts()
	if err != nil {
		return "", err
	}
	var best *CgroupMount
	for i, m := range mounts {
		if _, ok := below(m.MountPoint, filepath.Clean(dir)); ok && (best == nil || len(m.MountPoint) > len(best.MountPoint)) {
			best = &mounts[i]
		}
	}
	if best == nil {
		return "", fmt.Errorf("cgroup dir %s: not under a cgroup2 mount", dir)
	}
	cg, ok := best.Cgroup(dir)
	if !ok {
		return "", fmt.Errorf("cgroup dir %s: its mount %s shows cgroup %s, outside our cgroup namespace", dir, best.MountPoint, best.Root)
	}
	return cg, nil
}

// unescapeMountinfo undoes the octal escapes of /proc/self/mountinfo paths: the kernel writes a
// space, tab, newline and backslash as \040, \011, \012 and \134. Anything else is kept as is.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
