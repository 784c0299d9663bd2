package run

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// runCgroup is a cgroup v2 directory holding every process of one run.
type runCgroup struct {
	dir string
	fd  *os.File // open directory, for SysProcAttr.CgroupFD
}

// newRunCgroup creates <cgroup2 mount>/<the harness's cgroup>/killtest-<id>. It fails when there
// is no cgroup2 mount or it is not writable; the caller then runs without one.
func newRunCgroup(id string) (*runCgroup, error) {
	mount, err := cgroup2Mount()
	if err != nil {
		return nil, err
	}
	self, err := selfCgroup()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(mount, self, "killtest-"+id)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create run cgroup %s: %w", dir, err)
	}
	fd, err := os.Open(dir)
	if err != nil {
		_ = os.Remove(dir)
		return nil, fmt.Errorf("open run cgroup %s: %w", dir, err)
	}
	return &runCgroup{dir: dir, fd: fd}, nil
}

func cgroup2Mount() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("read mountinfo: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent major:minor root mountpoint options ... - fstype source superoptions
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) >= 5 && len(qf) >= 1 && qf[0] == "cgroup2" && strings.HasPrefix(pre, pf[0]) {
			return pf[4], nil
		}
	}
	return "", errors.New("no cgroup2 mount")
}

func selfCgroup() (string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", fmt.Errorf("read /proc/self/cgroup: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			return p, nil
		}
	}
	return "", errors.New("no cgroup v2 entry in /proc/self/cgroup")
}

// kill writes cgroup.kill (kernel ≥ 5.14): SIGKILL to every process in the cgroup and below.
func (c *runCgroup) kill() error {
	if err := os.WriteFile(filepath.Join(c.dir, "cgroup.kill"), []byte("1"), 0); err != nil {
		return fmt.Errorf("kill run cgroup %s: %w", c.dir, err)
	}
	return nil
}

// populated reports whether any process is in the cgroup or below.
func (c *runCgroup) populated() bool {
	b, err := os.ReadFile(filepath.Join(c.dir, "cgroup.events"))
	if err != nil {
		return false
	}
	return strings.Contains(string(b), "populated 1")
}

// remove kills what is left, waits (polling, bounded) for the cgroup to empty, and removes it and
// any child cgroups the system created, deepest first.
func (c *runCgroup) remove(deadline time.Duration) error {
	defer c.fd.Close()
	if c.populated() {
		_ = c.kill()
		end := time.Now().Add(deadline)
		for c.populated() && time.Now().Before(end) {
			time.Sleep(20 * time.Millisecond) // polling the kernel's populated flag with a deadline
		}
	}
	var dirs []string
	_ = filepath.WalkDir(c.dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	var errs []error
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := os.Remove(dirs[i]); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", dirs[i], err))
		}
	}
	return errors.Join(errs...)
}
