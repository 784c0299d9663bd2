package observe

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Config configures an Observer. The zero value of every field except Cookie means its default.
type Config struct {
	// Cookie is the environment entry "KEY=VALUE" the runner puts in every component it starts,
	// e.g. "KILLTEST_RUN=3f9a...". Required.
	Cookie string
	// CgroupDir is an optional cgroup v2 directory holding the run, e.g.
	// /sys/fs/cgroup/unified/killtest-3f9a. Processes in it or below are attributed. Default: none.
	CgroupDir string
	// Interval is the process-table sampling period. Default 100ms.
	Interval time.Duration
	// EnrichEvery is the period of the enrichment of attributed processes (fds, memory, wchan,
	// cgroup, cmdline). Default 1s.
	EnrichEvery time.Duration
	// ReapGrace is how long a child of the harness that the runner never declared with Own and
	// that was never seen with another parent may stay a zombie before the observer reaps it
	// (covers the instant between exec.Cmd.Start and Own). Default 1s.
	ReapGrace time.Duration
	// OrphanBound is the delivery bound of a parent-death signal: when a watched process's parent
	// dies, the observer polls it this long after (plus a millisecond) to learn whether it
	// outlived its parent by more than the bound. Default 200ms (the orphan detector's default).
	OrphanBound time.Duration
	// MaxPoints caps each timeline series (10 Hz samples, 1 Hz usage per process); longer runs
	// are decimated. Default 4096.
	MaxPoints int
	// MaxExited caps how many exited attributed processes (and finished zombies) are kept;
	// the oldest are forgotten first. Default 4096.
	MaxExited int
	// Log receives diagnostics. Default: discarded.
	Log *slog.Logger

	noPidfd bool // tests: time exits from the samples alone, as without pidfd support
}

// Validate reports a configuration error.
func (c Config) Validate() error {
	k, _, ok := strings.Cut(c.Cookie, "=")
	if !ok || k == "" || strings.ContainsAny(c.Cookie, "\x00") {
		return fmt.Errorf("observe config: Cookie %q: want KEY=VALUE", c.Cookie)
	}
	if c.Interval < 0 || c.EnrichEvery < 0 || c.ReapGrace < 0 || c.OrphanBound < 0 {
		return errors.New("observe config: Interval, EnrichEvery, ReapGrace and OrphanBound must not be negative")
	}
	if c.MaxPoints < 0 || c.MaxExited < 0 {
		return errors.New("observe config: MaxPoints and MaxExited must not be negative")
	}
	if c.CgroupDir != "" {
		if !filepath.IsAbs(c.CgroupDir) {
			return fmt.Errorf("observe config: CgroupDir %q: want an absolute path", c.CgroupDir)
		}
		if _, err := os.Stat(filepath.Join(c.CgroupDir, "cgroup.procs")); err != nil {
			return fmt.Errorf("observe config: CgroupDir %q is not a cgroup: %w", c.CgroupDir, err)
		}
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Interval == 0 {
		c.Interval = 100 * time.Millisecond
	}
	if c.EnrichEvery == 0 {
		c.EnrichEvery = time.Second
	}
	if c.ReapGrace == 0 {
		c.ReapGrace = time.Second
	}
	if c.OrphanBound == 0 {
		c.OrphanBound = 200 * time.Millisecond
	}
	if c.MaxPoints == 0 {
		c.MaxPoints = 4096
	}
	if c.MaxExited == 0 {
		c.MaxExited = 4096
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return c
}
