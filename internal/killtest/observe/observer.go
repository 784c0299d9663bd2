package observe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"

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
	start    time.Time              // guarded by mu
	end      time.Time              // guarded by mu
	tickErr  error                  // guarded by mu: last sampling error, logged once

	state      int // guarded by mu: 0 new, 1 running, 2 stopped
	prevReaper int // subreaper flag before Start
	setReaper  bool
	cancel     context.CancelFunc
	done       chan struct{}
	stopOnce   sync.Once
}

// negEntry remembers a process that is not part of the run, so its environment is read once.
type negEntry struct {
	gen       uint64
	comm      string    // re-check the cookie when the comm changes (an exec happened)
	harnessAt time.Time // first seen as an un-owned child of the harness
	rechecks  int       // environment re-reads after execs
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
		trough:   make(map[Key]int64),
		usage:    make(map[Key]*series[Usage]),
		samples:  newSeries[Sample](cfg.MaxPoints),
	}
	if cfg.CgroupDir != "" {
		rel, err := cgroupRel(cfg.CgroupDir)
		if err != nil {
			o.caps.CgroupError = err.Error()
		} else {
			o.cgRel = rel
			o.caps.Cgroup = true
		}
	}
	return o, nil
}

// cgroupRel returns dir relative to the cgroup2 mount that holds it, as /proc/<pid>/cgroup
// shows it ("/a/b").
func cgroupRel(dir string) (string, error) {
	mounts, err := procfs.GetMounts()
	if err != nil {
		return "", fmt.Errorf("read mounts: %w", err)
	}
	best := ""
	for _, m := range mounts {
		if m.FSType != "cgroup2" {
			continue
		}
		if (dir == m.MountPoint || strings.HasPrefix(dir, strings.TrimSuffix(m.MountPoint, "/")+"/")) && len(m.MountPoint) > len(best) {
			best = m.MountPoint
		}
	}
	if best == "" {
		return "", fmt.Errorf("cgroup dir %s: not under a cgroup2 mount", dir)
	}
	rel, err := filepath.Rel(best, dir)
	if err != nil {
		return "", fmt.Errorf("cgroup dir %s: %w", dir, err)
	}
	if rel == "." {
		return "/", nil
	}
	return "/" + rel, nil
}

// HarnessPID is the pid of the process the observer runs in.
func (o *Observer) HarnessPID() int { return o.self }

// Start makes the harness a child subreaper (a failure is recorded in Capabilities, not
// returned), takes a first sample synchronously and starts sampling in the background until
// ctx is canceled or Stop is called. It returns an error when /proc cannot be read or when
// called twice.
func (o *Observer) Start(ctx context.Context) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.state != 0 {
		return errors.New("observer: Start called twice")
	}
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
	now := time.Now()
	o.start = now
	if err := o.tickLocked(now, true); err != nil {
		o.restoreReaperLocked()
		return fmt.Errorf("observer: first sample: %w", err)
	}
	ctx, o.cancel = context.WithCancel(ctx)
	o.done = make(chan struct{})
	o.state = 1
	go o.loop(ctx)
	return nil
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

// Stop ends sampling: it cancels the loop and waits for it, takes a last sample (reaping
// re-parented orphans that exited), and clears the subreaper flag if Start set it. The recorded
// data stays readable. Stop is idempotent and safe to call without Start.
func (o *Observer) Stop() {
	o.stopOnce.Do(func() {
		o.mu.Lock()
		running := o.state == 1
		o.state = 2
		o.mu.Unlock()
		if running {
			o.cancel()
			<-o.done
		}
		o.mu.Lock()
		defer o.mu.Unlock()
		if running {
			if err := o.tickLocked(time.Now(), false); err != nil {
				o.log.Error("observer: last sample", "err", err)
			}
		}
		o.end = time.Now()
		o.restoreReaperLocked()
	})
}

func (o *Observer) restoreReaperLocked() {
	if o.setReaper {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, uintptr(o.prevReaper), 0, 0, 0); err != nil {
			o.log.Error("observer: restore subreaper flag", "err", err)
		}
		o.setReaper = false
	}
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
		delete(o.negative, sp.Key())
		o.attributeLocked(&sp, time.Now(), ByOwn, false, false)
	}
	for k, p := range o.procs {
		if k.PID == pid && !p.Exited && (st == 0 || st == k.StartTime) {
			p.Own, p.Reparented, p.ReparentedAt = true, false, time.Time{}
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
			out = append(out, p.clone())
		}
	}
	slices.SortFunc(out, func(a, b Process) int { return a.PID - b.PID })
	return out
}

func (p *Process) clone() Process {
	c := *p
	c.PPIDChain = slices.Clone(p.PPIDChain)
	c.Cmdline = slices.Clone(p.Cmdline)
	c.FDs = slices.Clone(p.FDs)
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
