package supervise

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"syscall"
)

// Task directories: private temporary directories for a task's files (the exec checker's chunk
// and output, which hold proxy credentials), owned like processes so that a sweep can remove
// those of a supervisor that was killed before it could. Layout, under a base directory
// (Config.TempDir, default os.TempDir()):
//
//	<base>/proxyline-exec-<instance>.<owner-pidns>.<owner-pid>.<owner-starttime>.<random>
//
// <instance> is the supervisor's instance name (<name>-<6 hex digits>, so the start-up sweep can
// keep to its own name), the owner is the supervisor's process by PID namespace, pid and start
// time (as in the cookie: neither a reused pid nor the same pid in another namespace is taken
// for the owner), <random> is 8 hex digits. Mode 0700. Names of the earlier format without the
// namespace do not match and are never touched.

// TaskDirPrefix begins the name of every task directory.
const TaskDirPrefix = "proxyline-exec-"

// taskDirRE is the exact name of a task directory; nothing else is ever swept. Numbers are
// canonical (no sign, no leading zero) so that every owner has one spelling.
var taskDirRE = regexp.MustCompile(`^` + regexp.QuoteMeta(TaskDirPrefix) +
	`([A-Za-z0-9_-]{1,64}-[0-9a-f]{6})\.([1-9][0-9]{0,19})\.([1-9][0-9]{0,18})\.(0|[1-9][0-9]{0,19})\.[0-9a-f]{8}$`)

// taskDirOwner is what a task directory's name says about its owner.
type taskDirOwner struct {
	instance string
	owner    ownerID
}

// parseTaskDir parses the base name of a task directory.
func parseTaskDir(base string) (taskDirOwner, bool) {
	m := taskDirRE.FindStringSubmatch(base)
	if m == nil {
		return taskDirOwner{}, false
	}
	o, ok := parseOwnerNumbers(m[2], m[3], m[4])
	if !ok {
		return taskDirOwner{}, false
	}
	return taskDirOwner{instance: m[1], owner: o}, true
}

func taskDirName(instance string, o ownerID, random string) string {
	return fmt.Sprintf("%s%s.%d.%d.%d.%s", TaskDirPrefix, instance, o.ns, o.pid, o.start, random)
}

// MkdirTask creates a new private directory (mode 0700) for one task's files under base
// (default Config.TempDir, else os.TempDir()), named so that Sweep can tell whether its owner,
// this supervisor, still lives. The caller removes it when the task is done; if this process
// dies first (SIGKILL), the next start-up sweep of a supervisor of the same name, or `proxyline
// cleanup`, removes it. An existing name is never reused: a directory someone else made in a
// shared /tmp is never ours.
func (s *Supervisor) MkdirTask(base string) (string, error) {
	base = cmp.Or(base, s.cfg.TempDir, os.TempDir())
	for range 100 {
		var r [4]byte
		if _, err := rand.Read(r[:]); err != nil {
			return "", fmt.Errorf("task directory name: %w", err)
		}
		dir := filepath.Join(base, taskDirName(s.instance, s.owner, hex.EncodeToString(r[:])))
		err := os.Mkdir(dir, 0o700)
		if err == nil {
			return dir, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("create task directory in %s: %w", base, err)
		}
	}
	return "", fmt.Errorf("create task directory in %s: every name tried exists", base)
}

// StaleDir is a task directory whose owner is dead.
type StaleDir struct {
	Path  string `json:"path"`
	Owner string `json:"owner"` // <pidns>:<pid>:<starttime> of the supervisor
	Bytes int64  `json:"bytes"` // size of the regular files in it
	// Action is "would remove", "removed", "failed: ...", or "skipped: ..." for an entry named
	// like a task directory that is not ours to remove (a symbolic link, not a directory, or
	// owned by another user) or whose owner cannot be judged from here (another PID namespace):
	// those are never touched.
	Action string `json:"action"`
}

// sweepTaskDirs finds the task directories under cfg.TempDir whose owner is dead and (unless
// DryRun) removes them. It acts only on names matching the exact pattern, on real directories
// (never a symbolic link, never followed) owned by our effective uid, through an os.Root on the
// base directory, so nothing outside it can be reached even if an entry is swapped meanwhile.
func sweepTaskDirs(cfg SweepConfig, j *ownerJudge) ([]StaleDir, int, error) {
	base := cmp.Or(cfg.TempDir, os.TempDir())
	root, err := os.OpenRoot(base)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("open task directory base %s: %w", base, err)
	}
	defer root.Close()
	d, err := root.Open(".")
	if err != nil {
		return nil, 0, fmt.Errorf("open task directory base %s: %w", base, err)
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, 0, fmt.Errorf("list task directory base %s: %w", base, err)
	}
	var out []StaleDir
	failed := 0
	for _, name := range names {
		o, ok := parseTaskDir(name)
		if !ok || (cfg.Owner != 0 && o.owner.pid != cfg.Owner) || !cfg.nameMatches(o.instance) {
			continue
		}
		v := j.judge(o.owner)
		if !v.dead && v.skip == "" {
			continue
		}
		sd := StaleDir{Path: filepath.Join(base, name), Owner: o.owner.String(), Action: v.skip}
		if sd.Action == "" {
			sd.Action = checkTaskDir(root, name)
		}
		if sd.Action == "" {
			sd.Bytes = dirBytes(root, name)
			sd.Action = "would remove"
			if !cfg.DryRun {
				if err := root.RemoveAll(name); err != nil {
					sd.Action = "failed: " + err.Error()
					failed++
				} else {
					sd.Action = "removed"
				}
			}
		}
		out = append(out, sd)
	}
	return out, failed, nil
}

// checkTaskDir returns why the entry may not be removed ("skipped: ..."), or "" when it is a
// real directory owned by us.
func checkTaskDir(root *os.Root, name string) string {
	fi, err := root.Lstat(name)
	if err != nil {
		return "skipped: " + err.Error()
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return "skipped: a symbolic link, not a directory (never followed)"
	}
	if !fi.IsDir() {
		return "skipped: not a directory"
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "skipped: no owner information"
	}
	if int(st.Uid) != os.Geteuid() {
		return fmt.Sprintf("skipped: owned by uid %d, not by us (uid %d): run cleanup as that user", st.Uid, os.Geteuid())
	}
	return ""
}

// dirBytes sums the sizes of the regular files in a task directory (evidence for the report),
// without following symbolic links.
func dirBytes(root *os.Root, name string) int64 {
	var n int64
	_ = fs.WalkDir(root.FS(), name, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
