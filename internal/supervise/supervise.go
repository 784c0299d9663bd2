package supervise

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/procfs"
)

const defaultGrace = 2 * time.Second

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.Grace < 0 {
		return fmt.Errorf("supervise config: grace %v is negative", c.Grace)
	}
	if c.CgroupParent != "" && !filepath.IsAbs(c.CgroupParent) {
		return fmt.Errorf("supervise config: cgroup parent %q is not an absolute path", c.CgroupParent)
	}
	return nil
}

// Supervisor runs tasks. Create it with New, Start it once, Run tasks from any number of
// goroutines, Stop it once done.
type Supervisor struct {
	cfg  Config
	name string
	// instance is name plus a random suffix: the name of this supervisor's cgroup directory and
	// the prefix of its task ids.
	instance string
	log      *slog.Logger
	fs       procfs.FS
	self     procInfo
	grace    time.Duration

	layers    Layers // set by Start, read-only afterwards
	ownerDir  string // this supervisor's cgroup directory, when the Cgroup layer is on
	seq       atomic.Uint64
	stopCtx   context.Context
	stopCause context.CancelFunc

	// startMu is held while a task's process is started and registered, and while the orphan
	// reaper scans, so the reaper never mistakes a just-started task for an orphan.
	startMu  sync.Mutex
	mu       sync.Mutex
	started  bool             // guarded by mu
	stopped  bool             // guarded by mu
	children map[int]struct{} // pids of processes we started and have not waited for; guarded by mu
	tasks    sync.WaitGroup
	reaper   *reaper
	stopOnce sync.Once
}

// New returns a Supervisor for cfg. It does not touch the system until Start.
func New(cfg Config) (*Supervisor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return nil, fmt.Errorf("open /proc: %w", err)
	}
	self, err := readProc(fs, os.Getpid())
	if err != nil {
		return nil, fmt.Errorf("read own process: %w", err)
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	// Several supervisors may live in one process (tests; a command and a worker): each gets
	// its own instance name, so their cgroup directories and task ids never collide.
	var suffix [3]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return nil, fmt.Errorf("supervisor instance id: %w", err)
	}
	s := &Supervisor{
		cfg:      cfg,
		name:     sanitizeName(cfg.Name),
		instance: sanitizeName(cfg.Name) + "-" + hex.EncodeToString(suffix[:]),
		log:      log,
		fs:       fs,
		self:     self,
		grace:    cmp.Or(cfg.Grace, defaultGrace),
		children: map[int]struct{}{},
	}
	s.stopCtx, s.stopCause = context.WithCancel(context.Background())
	return s, nil
}

// Start detects the layers the machine allows, becomes a child subreaper, sweeps what dead
// predecessors left (processes with their cookie, their task cgroups) and starts the orphan
// reaper. It logs the layers in force.
func (s *Supervisor) Start(ctx context.Context) error {
	s.mu.Lock()
	if s.started || s.stopped {
		s.mu.Unlock()
		return errors.New("supervisor: Start called twice or after Stop")
	}
	s.started = true
	s.mu.Unlock()

	d := detect(ctx, s.cfg, s.log)
	s.layers = d.layers
	if s.layers.Cgroup {
		s.ownerDir = filepath.Join(d.cgroupParent, ownerDirName(s.instance, s.self.pid, s.self.start))
		if err := os.MkdirAll(s.ownerDir, 0o755); err != nil {
			s.log.Warn("cgroup layer off: cannot create owner cgroup", "dir", s.ownerDir, "err", err)
			s.layers.Cgroup = false
			s.ownerDir = ""
		}
	}
	if s.layers.Cookie && !s.cfg.SkipStartSweep {
		rep, err := Sweep(ctx, SweepConfig{CgroupParent: d.cgroupParent, Grace: s.grace, Log: s.log, Name: s.name})
		if err != nil {
			s.log.Warn("start-up sweep incomplete", "err", err)
		} else if n := len(rep.Processes) + len(rep.Cgroups); n > 0 {
			s.log.Warn("start-up sweep removed leftovers of dead supervisors", "processes", len(rep.Processes), "cgroups", len(rep.Cgroups))
		}
	}
	if s.layers.Subreaper {
		s.reaper = newReaper(s)
		go s.reaper.run()
	}
	s.log.Info("supervisor started", "name", s.name, "instance", s.instance, "pid", s.self.pid,
		"process_group", s.layers.ProcessGroup, "pdeathsig", s.layers.Pdeathsig, "cgroup", s.layers.Cgroup,
		"pid_namespace", s.layers.PIDNamespace, "subreaper", s.layers.Subreaper, "cookie", s.layers.Cookie,
		"cgroup_dir", s.ownerDir)
	return nil
}

// Layers returns the layers in force (zero before Start).
func (s *Supervisor) Layers() Layers { return s.layers }

// Stop kills every running task (as on a timeout: SIGTERM, grace, SIGKILL), waits for their Run
// calls to return, stops the reaper and removes the supervisor's cgroup. It is idempotent.
func (s *Supervisor) Stop() {
	s.stopOnce.Do(func() {
		s.mu.Lock()
		s.stopped = true
		s.mu.Unlock()
		s.stopCause()
		s.tasks.Wait()
		if s.reaper != nil {
			s.reaper.stop()
		}
		if s.ownerDir != "" {
			if err := cgroupKillRemove(s.ownerDir, s.grace+5*time.Second); err != nil {
				s.log.Warn("remove supervisor cgroup", "dir", s.ownerDir, "err", err)
			}
		}
		s.log.Info("supervisor stopped", "name", s.name)
	})
}

func (s *Supervisor) addChild(pid int) {
	s.mu.Lock()
	s.children[pid] = struct{}{}
	s.mu.Unlock()
}

func (s *Supervisor) removeChild(pid int) {
	s.mu.Lock()
	delete(s.children, pid)
	s.mu.Unlock()
}

func (s *Supervisor) isChild(pid int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.children[pid]
	return ok
}
