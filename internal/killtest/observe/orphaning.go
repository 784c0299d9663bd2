package observe

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"github.com/proxyline/proxyline/internal/proctab"
)

// How exits and orphanings are timed (see docs/killtest-detectors.md, "Timing"):
//
//   - Every attributed process, and the parent of every attributed process, gets a life record:
//     aliveAt (the latest instant it is known alive: a sample that saw it running, a pidfd
//     poll) and deadBy (the earliest instant it is known to have exited: its pidfd became
//     readable, or a sample saw it a zombie or gone). Its pidfd sits in one epoll set serviced
//     by exitLoop, so deadBy is normally within microseconds of the exit.
//   - When a parent's exit is recorded, each of its attributed children that may have been
//     alive then gets an Orphaning (the parent died in [aliveAt, deadBy] of the parent), and a
//     liveness poll of the child's pidfd OrphanBound later. A child alive at that poll ran more
//     than OrphanBound without its parent, whatever happens to it afterwards.
//   - A child whose pidfd reports its exit while the parent's pidfd still polls alive died
//     before its parent: the parent's aliveAt moves past the child's exit and no Orphaning is
//     made for it.

// lifeLocked returns the life record of k, creating it (and watching its pidfd) when new. A
// process first seen in state Z is recorded dead by after.
func (o *Observer) lifeLocked(k Key, comm string, cmdline []string, state byte, seen, after time.Time) *life {
	if l, ok := o.lives[k]; ok {
		return l
	}
	l := &life{key: k, fd: -1, comm: comm, cmdline: cmdline}
	o.lives[k] = l
	if state == 'Z' || state == 'X' {
		l.deadBy = after
		return l
	}
	l.aliveAt = seen
	if o.ex == nil || k.StartTime == 0 {
		return l
	}
	err := o.ex.watch(l, func(pid int) (uint64, bool) {
		st, err := proctab.Stat(pid)
		return st.StartTime, err == nil && st.State != 'Z' && st.State != 'X'
	})
	switch {
	case errors.Is(err, errGone):
		l.deadBy = time.Now()
	case err != nil && o.ex.err == "":
		o.ex.err = err.Error()
		o.caps.PidfdError = "watch exits: " + err.Error() + " (exit times from samples for such processes)"
		o.log.Warn("observer: pidfd", "err", err)
	}
	return l
}

// diedLocked records that l's process had exited by `by`, and, if it is the parent of
// attributed processes, their orphaning.
func (o *Observer) diedLocked(l *life, by time.Time) {
	if l.dead() && !by.Before(l.deadBy) {
		return
	}
	l.aliveAt = o.aliveAtLocked(l)
	l.deadBy = by
	if o.ex != nil {
		o.ex.unwatch(l)
	}
	if p, ok := o.procs[l.key]; ok {
		o.orderAgainstParentLocked(p)
	}
	o.orphanKidsLocked(l)
}

// aliveAtLocked is the latest instant l's process is known alive: its own record, or the exit
// loop's last quiet epoll_wait while its pidfd was watched.
func (o *Observer) aliveAtLocked(l *life) time.Time {
	if o.ex != nil && l.fd >= 0 && !l.dead() && o.ex.quietAt.After(l.aliveAt) {
		return o.ex.quietAt
	}
	return l.aliveAt
}

// orderAgainstParentLocked settles the order of a child's exit and its parent's: a parent whose
// pidfd still polls alive after the child's exit was recorded outlived the child.
func (o *Observer) orderAgainstParentLocked(c *Process) {
	if c.Parent == (Key{}) {
		return
	}
	pl, ok := o.lives[c.Parent]
	if !ok || pl.dead() || o.ex == nil {
		return
	}
	t0 := time.Now()
	if alive, known := o.ex.alive(pl); known && alive && t0.After(pl.aliveAt) {
		pl.aliveAt = t0
	}
}

// orphanKidsLocked records the orphaning of the attributed children of a process that died.
func (o *Observer) orphanKidsLocked(l *life) {
	for _, ck := range o.kids[l.key] {
		c, ok := o.procs[ck]
		if !ok || c.Own || c.Parent != l.key {
			continue
		}
		if c.Orphaned != nil {
			if c.Orphaned.Parent == l.key && l.deadBy.Before(c.Orphaned.ParentDeadBy) {
				c.Orphaned.ParentDeadBy = l.deadBy
			}
			continue
		}
		if c.life.dead() && !c.life.deadBy.After(l.aliveAt) {
			continue // it had exited before its parent was last known alive
		}
		cmd := command(l.cmdline, l.comm)
		if pp, ok := o.procs[l.key]; ok && len(pp.Cmdline) > 0 {
			cmd = command(pp.Cmdline, pp.Comm)
		}
		c.Orphaned = &Orphaning{Parent: l.key, ParentCommand: cmd, ParentAliveAt: l.aliveAt, ParentDeadBy: l.deadBy}
		if !c.life.dead() {
			o.scheduleConfirmLocked(ck, l.deadBy)
		}
	}
}

// scheduleConfirmLocked asks for a liveness poll of k OrphanBound after its parent died.
func (o *Observer) scheduleConfirmLocked(k Key, parentDeadBy time.Time) {
	if o.ex == nil {
		return // the samples do it: each one that sees k running moves its AliveAt
	}
	o.ex.pending = append(o.ex.pending, confirm{key: k, due: parentDeadBy.Add(o.cfg.OrphanBound + time.Millisecond)})
	o.ex.wake()
}

// confirmLocked runs the liveness polls that are due: an orphan that polls alive at t0 was alive
// at t0 (read before the poll), more than OrphanBound after its parent's death.
func (o *Observer) confirmLocked(now time.Time) {
	if o.ex == nil {
		return
	}
	keep := o.ex.pending[:0]
	for _, c := range o.ex.pending {
		if c.due.After(now) {
			keep = append(keep, c)
			continue
		}
		p, ok := o.procs[c.key]
		if !ok || p.Own || p.life.dead() {
			continue
		}
		if q := o.aliveAtLocked(p.life); q.After(c.due) {
			p.life.aliveAt = q // a quiet epoll_wait after the due time already said it
			continue
		}
		t0 := time.Now()
		alive, known := o.ex.alive(p.life)
		if !known {
			st, err := proctab.Stat(c.key.PID)
			alive = err == nil && st.StartTime == c.key.StartTime && st.State != 'Z' && st.State != 'X'
			known = true
		}
		if alive {
			if t0.After(p.life.aliveAt) {
				p.life.aliveAt = t0
			}
		} else {
			o.diedLocked(p.life, time.Now())
		}
	}
	o.ex.pending = keep
}

// exitLoop services the epoll set until ctx ends: it records exits with the instant epoll_wait
// returned (each process had exited by then), every quietPeriod it records that every other
// watched process was alive when the wait began, and it runs the liveness polls when due.
//
// It runs on its own OS thread at a raised priority (nice -10) where allowed (root): it sleeps
// in epoll_wait nearly all the time, and a busy machine then delays its records less.
func (o *Observer) exitLoop(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	runtime.LockOSThread() // never unlocked: the thread (and its priority) ends with the loop
	_ = unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), -10)
	var logged bool
	for {
		o.mu.Lock()
		timeout := quietPeriod
		if due := o.ex.nextDue(); !due.IsZero() {
			timeout = min(max(time.Until(due), 0), timeout)
		}
		o.mu.Unlock()
		ids, called, at, full, err := o.ex.wait(o.ex.events, timeout)
		if ctx.Err() != nil {
			return
		}
		o.mu.Lock()
		if err != nil && !logged {
			o.log.Error("observer: watch exits", "err", err)
			logged = true
		}
		o.exitedLocked(ids, at)
		if !full && called.After(o.ex.quietAt) {
			o.ex.quietAt = called
		}
		o.confirmLocked(time.Now())
		if !full {
			o.releaseSyncsLocked(at)
		}
		o.mu.Unlock()
		if err != nil {
			// Do not spin on a broken epoll set; the samples still see exits.
			t := time.NewTimer(o.cfg.Interval)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	}
}

// exitedLocked records the exits reported by one epoll_wait: first every exit, then the
// orphanings they cause (a parent and its child reported together are ordered by their bounds).
func (o *Observer) exitedLocked(ids []uint32, at time.Time) {
	var ls []*life
	for _, id := range ids {
		l, ok := o.ex.byID[id]
		if !ok || (l.dead() && !at.Before(l.deadBy)) {
			continue // already recorded (by a sample, a drain, or an earlier wait)
		}
		l.aliveAt = o.aliveAtLocked(l) // the previous quiet wait did not report it
		l.deadBy = at
		o.ex.unwatch(l)
		ls = append(ls, l)
	}
	for _, l := range ls {
		if p, ok := o.procs[l.key]; ok {
			o.orderAgainstParentLocked(p)
		}
	}
	for _, l := range ls {
		o.orphanKidsLocked(l)
	}
}

// drainLocked records every exit the epoll set has ready now, without blocking. Only when the
// loop is not running (Stop): a second caller of epoll_wait could hide a ready fd from it.
func (o *Observer) drainLocked() {
	if o.ex == nil {
		return
	}
	buf := make([]unix.EpollEvent, 64)
	for {
		ids, _, at, full, err := o.ex.wait(buf, 0)
		if err != nil {
			return
		}
		o.exitedLocked(ids, at)
		if !full {
			return
		}
	}
}

// releaseSyncsLocked tells the BeginStop calls made before at that every exit signalled before
// them is recorded (the wait that returned at at was not full).
func (o *Observer) releaseSyncsLocked(at time.Time) {
	keep := o.ex.syncs[:0]
	for _, s := range o.ex.syncs {
		if s.at.Before(at) {
			close(s.done)
		} else {
			keep = append(keep, s)
		}
	}
	o.ex.syncs = keep
}

// syncExits waits until the exit loop has recorded every exit signalled before the call (it is
// woken, and answers after its next wait that returns everything ready), or the loop ended.
func (o *Observer) syncExits() {
	o.mu.Lock()
	if o.ex == nil || o.state != 1 {
		o.mu.Unlock()
		return
	}
	s := exitSync{at: time.Now(), done: make(chan struct{})}
	o.ex.syncs = append(o.ex.syncs, s)
	ex, loopDone := o.ex, o.exitDone
	o.mu.Unlock()
	ex.wake()
	select {
	case <-s.done:
	case <-loopDone:
	}
}

// BeginStop marks the start of the stop phase: the runner calls it right before it stops the
// components at the end of the scenario (restarts done by faults are part of the run). Exits
// already signalled by the kernel are recorded first, so every parent that died before this
// instant is known to have died before it. It returns the instant; later calls return the
// same.
//
// It also takes a sample, so that a process born and orphaned since the last one is seen with
// its orphaning before the stop.
func (o *Observer) BeginStop() time.Time {
	o.syncExits()
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.stopAt.IsZero() {
		return o.stopAt
	}
	if o.state != 1 {
		o.drainLocked() // no loop: draining here hides nothing from it
	}
	if err := o.tickLocked(time.Now(), false); err != nil {
		o.log.Error("observer: sample at the stop", "err", err)
	}
	o.stopAt = time.Now()
	return o.stopAt
}

// StopPhase returns when the stop phase began (BeginStop), zero before.
func (o *Observer) StopPhase() time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.stopAt
}

// parentLocked records the parent of a newly attributed process: by identity, with its own life
// record (and pidfd), or, for a process first seen already re-parented to the harness or to
// init, its orphaning since at most now.
func (o *Observer) parentLocked(p *Process, sp *proctab.Proc, seen, after time.Time) {
	if p.Own || o.ownedLocked(p.Key) {
		return
	}
	if sp.PPID == o.self || sp.PPID <= 1 {
		o.orphanedAtFirstSightLocked(p, sp.PPID, proctab.StartedAt(sp.StartTime), after)
		return
	}
	i, ok := o.index[sp.PPID]
	if !ok {
		// The parent left the table between the reads of the two stat files: it died, at or
		// after the read that showed it as the parent (seen), and by now.
		o.orphanedAtFirstSightLocked(p, sp.PPID, seen, after)
		return
	}
	pp := &o.snap[i]
	pk := pp.Key()
	var cmd []string
	if a, ok := o.procs[pk]; ok {
		cmd = a.Cmdline
	} else {
		cmd = o.cmdlineLocked(pk)
	}
	pl := o.lifeLocked(pk, pp.Comm, cmd, pp.State, seen, after)
	if n, ok := o.negative[pk]; ok {
		n.life = pl // the samples keep its liveness and see it go
	}
	p.Parent = pk
	o.kids[pk] = append(o.kids[pk], p.Key)
	if pl.dead() {
		o.orphanKidsLocked(pl)
	}
}

// orphanedAtFirstSightLocked records a process first seen without its parent: it was born after
// aliveAt (its parent forked it then), and its parent had died by `by`.
func (o *Observer) orphanedAtFirstSightLocked(p *Process, ppid int, aliveAt, by time.Time) {
	p.Orphaned = &Orphaning{ParentAliveAt: aliveAt, ParentDeadBy: by, AtFirstSight: true, NewPPID: ppid}
	if !p.life.dead() {
		o.scheduleConfirmLocked(p.Key, by)
	}
}

// ancestorsLocked returns the parent chain of sp at first sight, nearest first, up to the
// harness or PID 1, with each ancestor's command.
func (o *Observer) ancestorsLocked(sp *proctab.Proc) (pids []int, anc []Ancestor) {
	for pid, n := sp.PPID, 0; pid > 0 && n < 64; n++ {
		pids = append(pids, pid)
		i, ok := o.index[pid]
		if !ok {
			anc = append(anc, Ancestor{Key: Key{PID: pid}})
			break
		}
		a := &o.snap[i]
		ak := a.Key()
		e := Ancestor{Key: ak, Comm: a.Comm}
		if p, ok := o.procs[ak]; ok && len(p.Cmdline) > 0 {
			e.Cmdline = slices.Clone(p.Cmdline)
		} else {
			// Not attributed, or attributed in this very sample and not yet enriched (a
			// parent and its children first seen together): read it now, while it runs.
			e.Cmdline = o.cmdlineLocked(ak)
		}
		anc = append(anc, e)
		if pid == 1 || pid == o.self {
			break
		}
		pid = a.PPID
	}
	return pids, anc
}

// pruneLocked bounds the orphaning bookkeeping (at the enrichment's pace): a parent outside the
// run is forgotten a minute after it exited (its children's Orphaning holds what is known; the
// minute lets a late bound still tighten it), and a parent's list of children drops those that
// are forgotten or that exited before the parent was last known alive (they cannot be orphaned).
func (o *Observer) pruneLocked(now time.Time) {
	for k, l := range o.lives {
		if _, attributed := o.procs[k]; !attributed && l.dead() && now.Sub(l.deadBy) > time.Minute {
			delete(o.lives, k)
			delete(o.kids, k)
		}
	}
	for pk, ks := range o.kids {
		pl := o.lives[pk]
		keep := ks[:0]
		for _, ck := range ks {
			c, ok := o.procs[ck]
			if !ok || (pl != nil && c.life.dead() && !c.life.deadBy.After(pl.aliveAt)) {
				continue
			}
			keep = append(keep, ck)
		}
		if len(keep) == 0 {
			delete(o.kids, pk)
		} else {
			clear(ks[len(keep):])
			o.kids[pk] = keep
		}
	}
}

// cmdlineLocked reads the command line of an unattributed process once and caches it (the
// harness, its ancestors, a parent outside the run).
func (o *Observer) cmdlineLocked(k Key) []string {
	if args, ok := o.cmdCache[k]; ok {
		return args
	}
	args, _ := proctab.Cmdline(k.PID)
	if len(o.cmdCache) >= 1024 {
		clear(o.cmdCache)
	}
	o.cmdCache[k] = args
	return args
}
