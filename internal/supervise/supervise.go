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
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/proxyline/proxyline/internal/lifecycle"
	"github.com/proxyline/proxyline/internal/proctab"
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
// goroutines, Stop it once done (docs/lifecycle.md).
type Supervisor struct {
	cfg  Config
	name string
	// instance is name plus a random suffix: the name of this supervisor's cgroup directory and
	// the prefix of its task ids.
	instance string
	log      *slog.Logger
	self     procInfo
	owner    ownerID // self's identity in cookies, cgroup and task directory names
	grace    time.Duration
	life     lifecycle.Once

	layers   Layers // set by Start, read-only afterwards
	ownerDir string // this supervisor's cgroup directory, when the Cgroup layer is on
	// cgroupParent is where supervisors' cgroups are looked for by sweeps (set by Start).
	cgroupParent string
	seq          atomic.Uint64
	// stopCtx ends when Stop begins: every running task is stopped (SIGTERM, grace, SIGKILL).
	stopCtx   context.Context
	stopCause context.CancelFunc
	// cutCtx ends when Stop's context ends before the tasks are gone: tasks skip what is left of
	// their grace period and get SIGKILL at once.
	cutCtx context.Context
	cut    context.CancelFunc

	// startMu is held while a task's process is started and registered, and while the orphan
	// reaper scans, so the reaper never mistakes a just-started task for an orphan.
	startMu  sync.Mutex
	mu       sync.Mutex
	started  bool                // guarded by mu: Start succeeded, Run may start tasks
	stopped  bool                // guarded by mu: Stop began, Run refuses tasks
	running  map[string]struct{} // guarded by mu: ids of the tasks in Run
	children map[int]struct{}    // pids of processes we started and have not waited for; guarded by mu
	tasks    sync.WaitGroup
	reaper   *reaper // set by Start
}

// New returns a Supervisor for cfg. It does not touch the system until Start.
func New(cfg Config) (*Supervisor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	self, owner, err := readSelf()
	if err != nil {
		return nil, err
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
		self:     self,
		owner:    owner,
		grace:    cmp.Or(cfg.Grace, defaultGrace),
		running:  map[string]struct{}{},
		children: map[int]struct{}{},
	}
	s.stopCtx, s.stopCause = context.WithCancel(context.Background())
	s.cutCtx, s.cut = context.WithCancel(context.Background())
	return s, nil
}

// readSelf reads this process's identity: its pid (in its own PID namespace), its start time
// (through /proc/self, right even when /proc belongs to an outer namespace) and its namespace.
func readSelf() (procInfo, ownerID, error) {
	st, err := proctab.OwnStat()
	if err != nil {
		return procInfo{}, ownerID{}, fmt.Errorf("read own process: %w", err)
	}
	ns, err := proctab.OwnPIDNamespace()
	if err != nil {
		return procInfo{}, ownerID{}, fmt.Errorf("read own process: %w", err)
	}
	self := procInfo{pid: os.Getpid(), ppid: os.Getppid(), pgid: st.PGID, start: st.StartTime, state: string(rune(st.State))}
	return self, ownerID{ns: ns, pid: self.pid, start: self.start}, nil
}

// Start detects the layers the machine allows, becomes a child subreaper, sweeps what dead
// predecessors left (processes with their cookie, their task cgroups, their task directories)
// and starts the orphan reaper. It logs the layers in force.
//
// ctx bounds the start-up only (probes and sweep), not the supervisor's life: only Stop ends it.
// If ctx ends during the start-up, Start undoes it and returns an error wrapping ctx's error (the
// probes were cut short, so the layers they found cannot be trusted). A second Start returns
// lifecycle.ErrStarted, a Start after Stop lifecycle.ErrStopped.
func (s *Supervisor) Start(ctx context.Context) error {
	return s.life.Start(func() error { return s.start(ctx) })
}

func (s *Supervisor) start(ctx context.Context) error {
	d := detect(ctx, s.cfg, s.log)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("start supervisor %s: %w", s.instance, err)
	}
	s.layers = d.layers
	s.cgroupParent = d.cgroupParent
	if s.layers.Cgroup {
		s.ownerDir = filepath.Join(d.cgroupParent, ownerDirName(s.instance, s.owner))
		if err := os.MkdirAll(s.ownerDir, 0o755); err != nil {
			s.log.Warn("cgroup layer off: cannot create owner cgroup", "dir", s.ownerDir, "err", err)
			s.layers.Cgroup = false
			s.ownerDir = ""
		}
	}
	if s.layers.Cookie && !s.cfg.SkipStartSweep {
		s.sweepPredecessors(ctx)
	}
	if err := ctx.Err(); err != nil {
		if s.ownerDir != "" {
			_ = cgroupRemove(s.ownerDir) // empty: no task ran yet
		}
		return fmt.Errorf("start supervisor %s: %w", s.instance, err)
	}
	if s.layers.Subreaper {
		s.reaper = newReaper(s)
		go s.reaper.run()
	}
	s.mu.Lock()
	s.started = true
	s.mu.Unlock()
	s.log.Info("supervisor started", "name", s.name, "instance", s.instance, "pid", s.self.pid,
		"process_group", s.layers.ProcessGroup, "pdeathsig", s.layers.Pdeathsig, "cgroup", s.layers.Cgroup,
		"pid_namespace", s.layers.PIDNamespace, "subreaper", s.layers.Subreaper, "cookie", s.layers.Cookie,
		"cgroup_dir", s.ownerDir)
	return nil
}

// sweepPredecessors removes what dead supervisors of our name left behind.
func (s *Supervisor) sweepPredecessors(ctx context.Context) {
	rep, err := s.sweepDead(ctx)
	if err != nil {
		s.log.Warn("start-up sweep incomplete", "err", err)
	} else if rep.Found() > 0 {
		procs, cgroups, dirs := rep.Counts()
		s.log.Warn("start-up sweep removed leftovers of dead supervisors", "processes", procs, "cgroups", cgroups, "dirs", dirs)
	}
}

// SweepDead sweeps again, as Start does, what dead supervisors of this one's name (Config.Name)
// left behind: their processes, cgroups and task directories (in Config.TempDir). A live
// supervisor's, this one's included, are never touched. The queue worker calls it when its
// rescuer finds that another worker of this machine died, so that the dead worker's task
// directories (proxy lists with credentials) go at once rather than at the next start. It
// returns ErrStopped after Stop, and an error before Start.
func (s *Supervisor) SweepDead(ctx context.Context) (SweepReport, error) {
	s.mu.Lock()
	started, stopped := s.started, s.stopped
	s.mu.Unlock()
	switch {
	case stopped:
		return SweepReport{}, ErrStopped
	case !started:
		return SweepReport{}, errors.New("supervisor: SweepDead before Start")
	case !s.layers.Cookie:
		return SweepReport{}, errors.New("supervisor: no sweep without the cookie layer (/proc not ours or not readable)")
	}
	rep, err := s.sweepDead(ctx)
	if rep.Found() > 0 {
		procs, cgroups, dirs := rep.Counts()
		s.log.Warn("swept leftovers of dead supervisors", "processes", procs, "cgroups", cgroups, "dirs", dirs)
	}
	return rep, err
}

func (s *Supervisor) sweepDead(ctx context.Context) (SweepReport, error) {
	return Sweep(ctx, SweepConfig{CgroupParent: s.cgroupParent, TempDir: s.cfg.TempDir, Grace: s.grace, Log: s.log, Name: s.name})
}

// Layers returns the layers in force (zero before Start).
func (s *Supervisor) Layers() Layers { return s.layers }

// Stop stops every running task and the supervisor, and returns once they are gone. It is
// idempotent, safe without Start, and safe to call from several goroutines (docs/lifecycle.md).
//
// Shutdown order:
//  1. refuse: Run returns ErrStopped from now on;
//  2. drain: every running task is stopped as on a timeout (SIGTERM+SIGCONT to all of it, its
//     grace period while ctx lives), and its Run returns ErrStopped;
//  3. cut (ctx ended first): tasks skip what is left of their grace and get SIGKILL at once;
//  4. wait and release: every Run returns (each after its task's clean-up: processes gone, task
//     cgroup removed, zombies reaped); then the orphan reaper stops (no task is left to orphan
//     anything); then the supervisor's cgroup is killed, emptied and removed. Bound after the
//     cut: milliseconds normally; a process stuck in D state (HYGIENE trap 8) is waited for at
//     most killWait (5 s) per clean-up step, then named in the task's error;
//  5. error: the tasks the cut killed without their grace period (wrapping ctx's cause), and a
//     supervisor cgroup that could not be removed.
func (s *Supervisor) Stop(ctx context.Context) error {
	return s.life.Stop(ctx, s.stop)
}

func (s *Supervisor) stop(cut context.Context) error {
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	s.stopCause()
	var errs []error
	if ids := s.waitTasks(cut); len(ids) > 0 {
		errs = append(errs, fmt.Errorf("supervisor %s: stop cut short, tasks killed without their grace period: %s: %w",
			s.instance, strings.Join(ids, " "), context.Cause(cut)))
	}
	if s.reaper != nil {
		s.reaper.stop()
	}
	if s.ownerDir != "" {
		if err := cgroupKillRemove(s.ownerDir, s.grace+killWait); err != nil {
			errs = append(errs, fmt.Errorf("supervisor %s: remove its cgroup: %w", s.instance, err))
		}
	}
	s.log.Info("supervisor stopped", "name", s.name, "instance", s.instance)
	return errors.Join(errs...)
}

// waitTasks waits until every Run has returned. If cut ends first, it tells the tasks to skip the
// rest of their grace, waits for them all the same, and returns the ids of those still running at
// the cut.
func (s *Supervisor) waitTasks(cut context.Context) []string {
	done := make(chan struct{})
	go func() {
		s.tasks.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	default:
	}
	select {
	case <-done:
		return nil
	case <-cut.Done():
	}
	s.mu.Lock()
	ids := slices.Sorted(maps.Keys(s.running))
	s.mu.Unlock()
	s.cut()
	<-done
	return ids
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
