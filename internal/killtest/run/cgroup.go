package run

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/proxyline/proxyline/internal/proctab"
)

// runCgroup is a cgroup v2 directory holding every process of one run.
type runCgroup struct {
	dir string
	fd  *os.File // open directory, for SysProcAttr.CgroupFD
}

// newRunCgroup creates killtest-<id> in the harness's own cgroup (proctab.OwnCgroupDir, which
// honours the cgroup2 mount's root). It fails when there is no cgroup v2 or it is not writable;
// the caller then runs without one.
func newRunCgroup(id string) (*runCgroup, error) {
	own, err := proctab.OwnCgroupDir()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(own, "killtest-"+id)
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
