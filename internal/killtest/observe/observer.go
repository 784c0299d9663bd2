package observe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/proxyline/proxyline/internal/lifecycle"
	"github.com/proxyline/proxyline/internal/proctab"
)

// Observer samples the process table and attributes processes to one killtest run.
type Observer struct {
	cfg   Config
	log   *slog.Logger
	self  int    // the harness's pid
	cgRel string // CgroupDir relative to the cgroup2 mount ("/a/b"), "" when none

	mu       sync.Mutex
	reader   *proctab.Reader        // guarded by mu
	snap     []proctab.Proc         // guarded by mu: last snapshot
	index    map[int]int            // guarded by mu: pid -> position in snap
	gen      uint64                 // guarded by mu: tick counter
	procs    map[Key]*Process       // guarded by mu: attributed processes, alive and exited
	seenGen  map[Key]uint64         // guarded by mu: tick in which an attributed process was last seen
	negative map[Key]*negEntry      // guarded by mu: seen, not attributed (cookie already checked)
	own      map[int]uint64         // guarded by mu: runner's children: pid -> starttime (0: not yet known)
	exited   []Key                  // guarded by mu: exited attributed processes, oldest first
	zombies  map[Key]*Zombie        // guarded by mu: current zombies
	zdone    []Zombie               // guarded by mu: finished zombie stretches
	trough   map[Key]int64          // guarded by mu: min RssAnon since the last mark
	usage    map[Key]*series[Usage] // guarded by mu
	samples  *series[Sample]        // guarded by mu
	marks    []Mark                 // guarded by mu
	caps     Capabilities           // guarded by mu
	lastRich time.Time              // guarded by mu
	lastRead time.Time              // guarded by mu: when the last snapshot's read ended
	start    time.Time              // guarded by mu
	end      time.Time              // guarded by mu
	tickErr  error                  // guarded by mu: last sampling error, logged once
	ex       *exits                 // pidfd exit watch (nil when unavailable); its state is guarded by mu
	lives    map[Key]*life          // guarded by mu: attributed processes and their parents
	kids     map[Key][]Key          // guarded by mu: parent -> attributed children (for orphaning)
	cmdCache map[Key][]string       // guarded by mu: command lines of unattributed ancestors
	stopAt   time.Time              // guarded by mu: when the stop phase began (BeginStop)
	// startTicks is the boot clock at Start in ticks: a process that started earlier cannot
	// carry this run's cookie.
	startTicks uint64
	exitDone   chan struct{}

	life       lifecycle.Once
	state      int // guarded by mu: 0 new, 1 running, 2 stopped
	prevReaper int // subreaper flag before Start
	setReaper  bool
	cancel     context.CancelFunc
	done       chan struct{}
}

// negEntry remembers a process that is not part of the run, so its environment is read once.
type negEntry struct {
	gen       uint64
	comm      string    // re-check the cookie when the comm changes (an exec happened)
	harnessAt time.Time // first seen as an un-owned child of the harness
	rechecks  int       // environment re-reads after execs
	seenAt    time.Time // last sample that saw it, with its parent of then
	denied    bool      // its unreadable environment was looked at (once per process)
	doubt     bool      // and counted in Capabilities.EnvironDenied
	life      *life     // set when it is the parent of an attributed process
}

// maxRechecks bounds the environment re-reads of one non-attributed process.
const maxRechecks = 4

// New returns an Observer for cfg. It does not touch the process until Start.
func New(cfg Config) (*Observer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	o := &Observer{
		cfg:      cfg,
		log:      cfg.Log,
		self:     os.Getpid(),
		reader:   proctab.NewReader(),
		index:    make(map[int]int),
		procs:    make(map[Key]*Process),
		seenGen:  make(map[Key]uint64),
		negative: make(map[Key]*negEntry),
		own:      make(map[int]uint64),
		zombies:  make(map[Key]*Zombie),
		lives:    make(map[Key]*life),
		kids:     make(map[Key][]Key),
		cmdCache: make(map[Key][]string),
		trough:   make(map[Key]int64),
		usage:    make(map[Key]*series[Usage]),
		samples:  newSeries[Sample](cfg.MaxPoints),
	}
	if cfg.CgroupDir != "" {
		rel, err := proctab.CgroupOfDir(cfg.CgroupDir)
		if err != nil {
			o.caps.CgroupError = err.Error()
		} else {
			o.cgRel = rel
			o.caps.Cgroup = true
		}
	}
	return o, nil
}

// HarnessPID is the pid of the process the observer runs in.
func (o *Observer) HarnessPID() int { return o.self }

// Start makes the harness a child subreaper (a failure is recorded in Capabilities, not
// returned), takes a first sample synchronously and starts sampling in the background; it
// returns once the first sample is in. ctx bounds the start-up only: the observer samples until
// Stop. It returns an error when /proc cannot be read, is not the view of this process's PID
// namespace (proctab.ErrForeignProc), or ctx has ended (nothing is left running then, and the
// subreaper flag is restored); lifecycle.ErrStarted when called twice, lifecycle.ErrStopped
// after Stop.
func (o *Observer) Start(ctx context.Context) error {
	return o.life.Start(func() error { return o.startUp(ctx) })
}

func (o *Observer) startUp(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("observer: start: %w", err)
	}
	// Every pid the observer reads in /proc and signals by number must name the same process:
	// in a PID namespace whose /proc is another namespace's (unshare --pid without --mount-proc)
	// they name other processes, and every verdict would be about strangers.
	if err := proctab.CheckOwnProc(); err != nil {
		return fmt.Errorf("observer: start: %w", err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	var prev int32
	if err := unix.Prctl(unix.PR_GET_CHILD_SUBREAPER, uintptr(unsafe.Pointer(&prev)), 0, 0, 0); err != nil {
		o.caps.SubreaperError = fmt.Sprintf("prctl(PR_GET_CHILD_SUBREAPER): %v", err)
	} else if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		o.caps.SubreaperError = fmt.Sprintf("prctl(PR_SET_CHILD_SUBREAPER): %v", err)
	} else {
		o.caps.Subreaper = true
		o.prevReaper = int(prev)
		o.setReaper = prev == 0
	}
	if !o.caps.Subreaper {
		o.log.Warn("observer: not a subreaper, orphans re-parent to init and are found by cookie only",
			"reason", o.caps.SubreaperError)
	}
	if o.cfg.CgroupDir != "" && !o.caps.Cgroup {
		o.log.Warn("observer: run cgroup unusable", "dir", o.cfg.CgroupDir, "reason", o.caps.CgroupError)
	}
	if ticks, err := proctab.BootTicks(); err == nil {
		o.startTicks = ticks
	}
	o.startExitsLocked()
	now := time.Now()
	o.start = now
	if err := o.tickLocked(now, true); err != nil {
		_ = o.restoreReaperLocked() // the first sample's error says more
		if o.ex != nil {
			o.ex.close()
			o.ex = nil
		}
		return fmt.Errorf("observer: first sample: %w", err)
	}
	// The loops' context: only Stop ends it, not the end of the start-up's.
	var loopCtx context.Context
	loopCtx, o.cancel = context.WithCancel(context.WithoutCancel(ctx))
	o.done = make(chan struct{})
	o.state = 1
	go o.loop(loopCtx)
	if o.ex != nil {
		o.exitDone = make(chan struct{})
		go o.exitLoop(loopCtx, o.exitDone)
	}
	return nil
}

// startExitsLocked sets up the pidfd exit watch; without it (kernel < 5.3, seccomp) exits are
// known from the samples only, and Capabilities says so.
func (o *Observer) startExitsLocked() {
	if o.cfg.noPidfd {
		o.caps.PidfdError = "disabled: exit times from 10 Hz samples only"
		return
	}
	ex, err := newExits()
	if err != nil {
		o.caps.PidfdError = err.Error() + ": exit times from 10 Hz samples only"
		o.log.Warn("observer: no pidfd exit watch", "err", err)
		return
	}
	o.ex = ex
	o.caps.Pidfd = true
}

func (o *Observer) loop(ctx context.Context) {
	defer close(o.done)
	t := time.NewTicker(o.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			o.mu.Lock()
			err := o.tickLocked(now, false)
			if err != nil && (o.tickErr == nil || o.tickErr.Error() != err.Error()) {
				o.log.Error("observer: sample", "err", err)
			}
			o.tickErr = err
			o.mu.Unlock()
		}
	}
}

// Stop ends sampling and returns once the observer's goroutines have ended. The recorded data
// stays readable. It is idempotent, safe without Start, and safe to call from several goroutines
// (docs/lifecycle.md).
//
// Shutdown order:
//  1. refuse: the state is stopped: BeginStop and syncExits no longer wait for the loops;
//  2. drain: none, a sample in progress is short: Stop cuts at once and ctx is not used;
//  3. cut: the sampling loop and the pidfd exit loop are cancelled;
//  4. wait and release: both loops end (bound: one sample, milliseconds); then the exits they
//     signalled are recorded and a last sample is taken (it reaps re-parented orphans that
//     exited); then the pidfd watch is closed and the subreaper flag cleared if Start set it;
//  5. error: the last sample's error and a failure to restore the subreaper flag.
func (o *Observer) Stop(ctx context.Context) error {
	return o.life.Stop(ctx, func(context.Context) error { return o.stop() })
}

func (o *Observer) stop() error {
	o.mu.Lock()
	o.state = 2
	o.mu.Unlock()
	o.cancel()
	<-o.done
	if o.ex != nil {
		o.ex.wake()
		<-o.exitDone
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	var errs []error
	o.drainLocked()
	if err := o.tickLocked(time.Now(), false); err != nil {
		errs = append(errs, fmt.Errorf("observer: last sample: %w", err))
	}
	if o.ex != nil {
		o.ex.close()
		o.ex = nil
	}
	o.end = time.Now()
	if err := o.restoreReaperLocked(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// restoreReaperLocked clears the subreaper flag if Start set it.
func (o *Observer) restoreReaperLocked() error {
	if !o.setReaper {
		return nil
	}
	o.setReaper = false
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, uintptr(o.prevReaper), 0, 0, 0); err != nil {
		return fmt.Errorf("observer: restore subreaper flag: %w", err)
	}
	return nil
}

// Own declares pid a child the runner started itself (exec.Cmd) and will Wait for: the
// observer never reaps it and does not count it as re-parented. It is attributed to the run.
// Call it right after exec.Cmd.Start. Helpers the harness starts without the cookie (probe
// commands) need not be declared: they are not attributed.
func (o *Observer) Own(pid int) {
	sp, err := proctab.Stat(pid)
	o.mu.Lock()
	defer o.mu.Unlock()
	if err != nil {
		o.own[pid] = 0 // learn its start time at the next sample, if it is still there
		return
	}
	st := sp.StartTime
	o.own[pid] = st
	if _, ok := o.procs[sp.Key()]; !ok {
		// Record it now: a short-lived component may be gone before the next sample.
		now := time.Now()
		o.attributeLocked(&sp, now, now, ByOwn, false, false)
	}
	for k, p := range o.procs {
		if k.PID == pid && !p.Exited && (st == 0 || st == k.StartTime) {
			// Seen before Own (between exec.Cmd.Start and this call) as a child of the
			// harness: it is the runner's, not an orphan.
			p.Own, p.Reparented, p.ReparentedAt = true, false, time.Time{}
			p.Orphaned, p.Parent = nil, Key{}
		}
	}
}

func (o *Observer) ownedLocked(k Key) bool {
	st, ok := o.own[k.PID]
	return ok && (st == 0 || st == k.StartTime)
}

// Refresh takes a sample now (with enrichment), whether or not the observer is running.
// Detectors call it while they poll.
func (o *Observer) Refresh() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.tickLocked(time.Now(), true)
}

// Mark records a phase boundary: a fresh sample and every attributed process's fds and memory.
// It returns the recorded mark.
func (o *Observer) Mark(name string) Mark {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := time.Now()
	if err := o.tickLocked(now, true); err != nil {
		o.log.Error("observer: sample at mark", "mark", name, "err", err)
	}
	m := Mark{Name: name, At: now}
	for k, p := range o.procs {
		if p.Exited {
			continue
		}
		mp := MarkProc{Key: k, Comm: p.Comm, Cmdline: slices.Clone(p.Cmdline), State: p.State, RSSAnon: p.RSSAnon}
		switch {
		case p.State == 'Z':
			mp.FDErr = "zombie"
		case p.fdErr != "":
			mp.FDErr = p.fdErr
		default:
			mp.FDs = slices.Clone(p.FDs) // read by the enrichment of this very sample
		}
		tr, ok := o.trough[k]
		if !ok || (p.RSSAnon > 0 && p.RSSAnon < tr) {
			tr = p.RSSAnon
		}
		mp.TroughRSSAnon = tr
		o.trough[k] = p.RSSAnon
		m.Procs = append(m.Procs, mp)
	}
	slices.SortFunc(m.Procs, func(a, b MarkProc) int { return a.PID - b.PID })
	o.marks = append(o.marks, m)
	return m
}

// Alive returns the attributed processes still in the process table, zombies included
// (State 'Z'), sorted by pid.
func (o *Observer) Alive() []Process {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.listLocked(func(p *Process) bool { return !p.Exited })
}

// Processes returns every attributed process seen (alive and exited, within MaxExited),
// sorted by first sight.
func (o *Observer) Processes() []Process {
	o.mu.Lock()
	defer o.mu.Unlock()
	ps := o.listLocked(func(*Process) bool { return true })
	slices.SortStableFunc(ps, func(a, b Process) int { return a.FirstSeen.Compare(b.FirstSeen) })
	return ps
}

func (o *Observer) listLocked(keep func(*Process) bool) []Process {
	var out []Process
	for _, p := range o.procs {
		if keep(p) {
			c := p.clone()
			if p.life != nil {
				c.AliveAt = o.aliveAtLocked(p.life)
			}
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b Process) int { return a.PID - b.PID })
	return out
}

func (p *Process) clone() Process {
	c := *p
	c.PPIDChain = slices.Clone(p.PPIDChain)
	c.Ancestors = slices.Clone(p.Ancestors)
	c.Cmdline = slices.Clone(p.Cmdline)
	c.FDs = slices.Clone(p.FDs)
	if p.life != nil {
		c.AliveAt, c.DeadBy = p.life.aliveAt, p.life.deadBy
	}
	if p.Orphaned != nil {
		or := *p.Orphaned
		c.Orphaned = &or
	}
	if p.Status != nil {
		st := *p.Status
		c.Status = &st
	}
	c.life = nil
	return c
}

// Zombies returns every zombie stretch seen (finished ones first, then current ones), for
// attributed zombies and zombie children of the harness.
func (o *Observer) Zombies() []Zombie {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.zombiesLocked()
}

func (o *Observer) zombiesLocked() []Zombie {
	out := slices.Clone(o.zdone)
	var cur []Zombie
	for _, z := range o.zombies {
		cur = append(cur, *z)
	}
	slices.SortFunc(cur, func(a, b Zombie) int { return a.Since.Compare(b.Since) })
	return append(out, cur...)
}

// Marks returns the phase marks recorded so far, in order.
func (o *Observer) Marks() []Mark {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.marks)
}

// Capabilities says what the observer could set up.
func (o *Observer) Capabilities() Capabilities {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.caps
}

// Timeline returns the recorded samples, per-process usage, marks and zombies.
func (o *Observer) Timeline() Timeline {
	o.mu.Lock()
	defer o.mu.Unlock()
	tl := Timeline{
		Start:   o.start,
		End:     o.end,
		Samples: o.samples.snapshot(),
		Usage:   make(map[Key][]Usage, len(o.usage)),
		Marks:   slices.Clone(o.marks),
		Zombies: o.zombiesLocked(),
	}
	if tl.End.IsZero() {
		tl.End = time.Now()
	}
	for k, s := range o.usage {
		tl.Usage[k] = s.snapshot()
	}
	return tl
}
