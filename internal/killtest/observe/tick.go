package observe

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/proxyline/proxyline/internal/proctab"
)

// tickLocked takes one sample: snapshot, attribution of new processes, exits, zombies and
// reaping; with enrich (or when EnrichEvery has passed) also enriches attributed processes.
//
// now is taken before the snapshot (a process seen running was alive at now or later); after,
// taken once the snapshot is read, bounds what it saw gone (it had exited by after).
func (o *Observer) tickLocked(now time.Time, enrich bool) error {
	before := time.Now()
	snap, err := o.reader.Snapshot(o.snap)
	o.snap = snap
	if err != nil {
		return err
	}
	after := time.Now()
	o.blindLocked(before, after)
	o.gen++
	clear(o.index)
	for i := range snap {
		o.index[snap[i].PID] = i
	}
	for i := range snap {
		o.observeLocked(&snap[i], now, after)
	}
	o.sweepLocked(now, after)
	o.zombiesTickLocked(now)
	o.confirmLocked(after)
	if enrich || now.Sub(o.lastRich) >= o.cfg.EnrichEvery {
		o.enrichLocked(now, enrich)
		o.pruneLocked(after)
		o.lastRich = now
	}
	s := Sample{At: now}
	for _, p := range o.procs {
		if !p.Exited {
			s.Attributed++
		}
	}
	s.Zombies = len(o.zombies)
	o.samples.add(s)
	return nil
}

// blindLocked records the longest stretch before the stop phase in which the process table was
// not read (from the end of one snapshot to the start of the next): a process born and gone
// inside it is never seen, so the orphan check cannot vouch for processes shorter-lived than it.
func (o *Observer) blindLocked(before, after time.Time) {
	if !o.lastRead.IsZero() && o.stopAt.IsZero() {
		if gap := before.Sub(o.lastRead); gap > o.caps.MaxSampleGap {
			o.caps.MaxSampleGap, o.caps.MaxSampleGapAt = gap, o.lastRead
		}
	}
	o.lastRead = after
}

// observeLocked updates or attributes one process of the snapshot.
func (o *Observer) observeLocked(sp *proctab.Proc, now, after time.Time) {
	k := sp.Key()
	if p, ok := o.procs[k]; ok {
		o.updateLocked(p, sp, now, after)
		return
	}
	if n, ok := o.negative[k]; ok {
		o.recheckLocked(n, sp, now, after)
		return
	}
	// A new process.
	cookie, envErr := o.readCookieLocked(sp.PID)
	inCg := false
	if o.cgRel != "" {
		if cg, err := proctab.Cgroup(sp.PID); err == nil {
			inCg = o.inRunCgroup(cg)
		}
	}
	parentAttributed := false
	if i, ok := o.index[sp.PPID]; ok {
		_, parentAttributed = o.procs[o.snap[i].Key()]
	}
	owned := o.ownedLocked(k)
	switch {
	case owned:
		o.attributeLocked(sp, now, after, ByOwn, cookie, inCg)
	case cookie:
		o.attributeLocked(sp, now, after, ByCookie, cookie, inCg)
	case inCg:
		o.attributeLocked(sp, now, after, ByCgroup, cookie, inCg)
	case parentAttributed:
		o.attributeLocked(sp, now, after, ByDescendant, cookie, inCg)
	default:
		n := &negEntry{gen: o.gen, comm: sp.Comm, seenAt: now, life: o.lives[k]}
		if sp.PPID == o.self {
			// First seen as a child of the harness, without cookie: the runner's child between
			// exec.Cmd.Start and Own, or one of the harness's helpers (a probe command). Not
			// attributed; reaped only if it stays a zombie for ReapGrace.
			n.harnessAt = now
		}
		o.negative[k] = n
		if envErr != nil {
			o.deniedLocked(n, sp, envErr)
		}
	}
}

// updateLocked refreshes an attributed process from the snapshot: its command after an exec,
// its state, its liveness, and whether its parent died (its PPID changed).
func (o *Observer) updateLocked(p *Process, sp *proctab.Proc, now, after time.Time) {
	k := p.Key
	o.seenGen[k] = o.gen
	if p.Comm != sp.Comm && sp.State != 'Z' {
		// It exec'ed: its argv changed (the fork→exec window showed the parent's).
		if args, err := proctab.Cmdline(k.PID); err == nil && len(args) > 0 {
			p.Cmdline, p.cmdComm = args, sp.Comm
		}
	}
	ppidChanged := sp.PPID != p.PPID
	p.PPID, p.PGID, p.SID, p.Comm, p.LastSeen = sp.PPID, sp.PGID, sp.SID, sp.Comm, now
	if p.State != sp.State {
		p.State, p.StateSince = sp.State, now
		if sp.State == 'Z' && p.DiedAt.IsZero() {
			p.DiedAt = now
		}
	}
	if sp.State == 'Z' || sp.State == 'X' {
		o.diedLocked(p.life, after)
	} else if now.After(p.life.aliveAt) {
		p.life.aliveAt = now
	}
	if ppidChanged && p.Parent != (Key{}) && sp.PPID != p.Parent.PID {
		// Re-parented: its parent had exited by the time this snapshot was read.
		if pl, ok := o.lives[p.Parent]; ok {
			o.diedLocked(pl, after)
		}
	}
	if ppidChanged && p.Orphaned != nil && p.Orphaned.NewPPID == 0 {
		p.Orphaned.NewPPID = sp.PPID
	}
	if sp.PPID == o.self && !p.Own && !o.ownedLocked(k) && !p.Reparented {
		p.Reparented, p.ReparentedAt = true, now
		o.log.Debug("observer: re-parented to harness", "pid", k.PID, "comm", sp.Comm)
	}
}

// recheckLocked looks again at a process that is not attributed: it may have become the
// runner's child, an orphan re-parented to the harness, or (after an exec) a carrier of the
// cookie.
func (o *Observer) recheckLocked(n *negEntry, sp *proctab.Proc, now, after time.Time) {
	n.gen = o.gen
	if n.life != nil {
		if sp.State == 'Z' || sp.State == 'X' {
			o.diedLocked(n.life, after)
		} else if now.After(n.life.aliveAt) {
			n.life.aliveAt = now
		}
	}
	harnessChild := sp.PPID == o.self && !o.ownedLocked(sp.Key())
	switch {
	case o.ownedLocked(sp.Key()):
		o.attributeLocked(sp, now, after, ByOwn, false, false)
	case harnessChild && n.harnessAt.IsZero():
		// First seen elsewhere and now a child of the harness: re-parented. Its parent was
		// alive at the previous sample (it was still its parent) and had died by now.
		p := o.attributeLocked(sp, now, after, ByReparented, false, false)
		if p.Orphaned != nil {
			p.Orphaned.AtFirstSight, p.Orphaned.ParentAliveAt = false, n.seenAt
		}
	case n.comm != sp.Comm && n.rechecks < maxRechecks:
		// It exec'ed since we read its environment (`env K=V cmd` execs twice): read it
		// again, a bounded number of times.
		n.comm = sp.Comm
		n.rechecks++
		has, err := o.readCookieLocked(sp.PID)
		if has {
			o.attributeLocked(sp, now, after, ByCookie, true, false)
		} else if err != nil {
			o.deniedLocked(n, sp, err)
		}
	}
	n.seenAt = now
}

func (o *Observer) inRunCgroup(cg string) bool {
	return cg == o.cgRel || (len(cg) > len(o.cgRel) && cg[:len(o.cgRel)] == o.cgRel && (o.cgRel == "/" || cg[len(o.cgRel)] == '/'))
}

// readCookieLocked reads the environment of pid and says whether it holds the cookie.
func (o *Observer) readCookieLocked(pid int) (bool, error) {
	return proctab.HasEnv(pid, o.cfg.Cookie)
}

// deniedLocked counts an unattributed process whose environment could not be read, when it could
// be the system's and so carry the cookie unseen (Capabilities.EnvironDenied). It cannot when it
// started before the run (the cookie is fresh), when it is a kernel thread (no environment; they
// rename themselves), or, with the harness a subreaper, when it is outside the harness's tree and
// the run cgroup: every process the system starts stays in the harness's tree while the harness
// lives (an orphan re-parents to the nearest living subreaper among its ancestors). Those are
// counted apart (EnvironIgnored), for the report's notes.
//
// A process that is exiting (state Z, or its memory already released) is not counted either:
// its /proc files then belong to root, so an unprivileged harness gets EACCES, and it has no
// environment left to carry anything; it lived less than one sample.
func (o *Observer) deniedLocked(n *negEntry, sp *proctab.Proc, err error) {
	if n.denied || !errors.Is(err, os.ErrPermission) {
		return
	}
	if sp.KernelThread() || sp.StartTime < o.startTicks || sp.State == 'Z' || sp.State == 'X' {
		return
	}
	if again, err := proctab.Stat(sp.PID); err != nil || again.StartTime != sp.StartTime || again.State == 'Z' || again.State == 'X' {
		return // it exited meanwhile
	}
	n.denied = true
	if o.caps.Subreaper && !o.inTreeLocked(sp) {
		if o.caps.EnvironIgnored == 0 {
			o.caps.EnvironIgnoredExample = fmt.Sprintf("pid %d (%s): %v", sp.PID, sp.Comm, err)
		}
		o.caps.EnvironIgnored++
		return
	}
	n.doubt = true
	if o.caps.EnvironDenied == 0 {
		parent := "?"
		if i, ok := o.index[sp.PPID]; ok {
			parent = o.snap[i].Comm
		}
		o.caps.EnvironDeniedExample = fmt.Sprintf("pid %d (%s, %s, child of %d %s, harness %d): %v", sp.PID, sp.Comm, uidsOf(sp.PID), sp.PPID, parent, o.self, err)
	}
	o.caps.EnvironDenied++
}

// uidsOf returns the "Uid:" line of a process's status (readable by anyone), for evidence.
func uidsOf(pid int) string {
	uids, err := proctab.StatusUIDs(pid)
	if err != nil {
		return "uid unknown"
	}
	s := make([]string, len(uids))
	for i, u := range uids {
		s[i] = strconv.Itoa(u)
	}
	return "uids " + strings.Join(s, "/")
}

// inTreeLocked reports whether sp descends from the harness. It follows the parent chain in the
// current snapshot; where an ancestor left the table after the snapshot read its child, it reads
// the child's stat again (it was re-parented meanwhile: to the harness or a subreaper inside the
// harness's tree if it is the system's, elsewhere if not). When the chain still cannot be
// followed it answers true: the process may be the system's.
func (o *Observer) inTreeLocked(sp *proctab.Proc) bool {
	child, pid := sp.PID, sp.PPID
	for n := 0; n < 64; n++ {
		switch {
		case pid == o.self:
			return true
		case pid <= 1:
			return false
		}
		if i, ok := o.index[pid]; ok && o.snap[i].State != 'Z' && o.snap[i].State != 'X' {
			child, pid = pid, o.snap[i].PPID
			continue
		}
		again, err := proctab.Stat(child)
		if err != nil || again.PPID == pid {
			return true // gone, or its parent still there but unknown to the snapshot
		}
		pid = again.PPID
	}
	return true
}

func (o *Observer) attributeLocked(sp *proctab.Proc, now, after time.Time, how Attribution, cookie, inCg bool) *Process {
	k := sp.Key()
	if n, ok := o.negative[k]; ok && n.doubt {
		// Its unreadable environment no longer matters: it is attributed after all (the
		// runner's child declared late, an orphan re-parented to the harness).
		n.doubt = false
		o.caps.EnvironDenied--
	}
	delete(o.negative, k)
	p := &Process{
		Key: k, PPID: sp.PPID, PGID: sp.PGID, SID: sp.SID, Comm: sp.Comm,
		State: sp.State, StateSince: now,
		Attribution: how, Cookie: cookie, InCgroup: inCg, Own: o.ownedLocked(k),
		FirstSeen: now, LastSeen: now,
	}
	if sp.State == 'Z' {
		p.DiedAt = now
	}
	if !p.Own && sp.PPID == o.self && how != ByOwn {
		p.Reparented, p.ReparentedAt = true, now
	}
	p.PPIDChain, p.Ancestors = o.ancestorsLocked(sp)
	if args, err := proctab.Cmdline(k.PID); err == nil && len(args) > 0 {
		p.Cmdline, p.cmdComm = args, sp.Comm
	}
	if !cookie && how != ByCookie {
		// Not read yet for descendants attributed by tree: it is cheap and useful evidence.
		if has, err := o.readCookieLocked(k.PID); err == nil {
			p.Cookie = has
		}
	}
	o.procs[k] = p
	o.seenGen[k] = o.gen
	o.usage[k] = newSeries[Usage](o.cfg.MaxPoints)
	p.life = o.lifeLocked(k, sp.Comm, p.Cmdline, sp.State, now, after)
	o.parentLocked(p, sp, now, after)
	o.log.Debug("observer: attributed", "pid", k.PID, "comm", sp.Comm, "how", how)
	return p
}

// sweepLocked marks attributed processes missing from this snapshot as exited and forgets
// non-attributed ones that left.
func (o *Observer) sweepLocked(now, after time.Time) {
	for k, n := range o.negative {
		if n.gen != o.gen {
			if n.life != nil {
				o.diedLocked(n.life, after)
			}
			delete(o.negative, k)
		}
	}
	for k, p := range o.procs {
		if p.Exited || o.seenGen[k] == o.gen {
			continue
		}
		p.Exited, p.ExitedAt = true, now
		if p.DiedAt.IsZero() {
			p.DiedAt = now
		}
		o.diedLocked(p.life, after)
		delete(o.seenGen, k)
		o.exited = append(o.exited, k)
	}
	for len(o.exited) > o.cfg.MaxExited {
		k := o.exited[0]
		o.exited = o.exited[1:]
		delete(o.procs, k)
		delete(o.usage, k)
		delete(o.trough, k)
		delete(o.lives, k)
		delete(o.kids, k)
	}

	for pid, st := range o.own {
		if st == 0 {
			if i, ok := o.index[pid]; ok {
				o.own[pid] = o.snap[i].StartTime
			}
			continue
		}
		if i, ok := o.index[pid]; !ok || o.snap[i].StartTime != st {
			delete(o.own, pid) // the runner's child is gone: its pid may be reused by anyone
		}
	}
}

// zombiesTickLocked records zombie stretches of attributed processes and of children of the
// harness, and reaps zombies that are orphans of the system under test.
func (o *Observer) zombiesTickLocked(now time.Time) {
	for i := range o.snap {
		sp := &o.snap[i]
		if sp.State != 'Z' {
			continue
		}
		k := sp.Key()
		p, attributed := o.procs[k]
		harnessChild := sp.PPID == o.self
		if !attributed {
			// A harness helper (probe) that its caller has not waited for yet: not the
			// system's; reaped, and then recorded, only if it is left for ReapGrace.
			if harnessChild && !o.ownedLocked(k) && o.reapableLocked(k, nil, now) {
				z := &Zombie{Key: k, Comm: sp.Comm, Since: now, Until: now, ParentIsHarness: true}
				o.reapLocked(k, z, nil)
			}
			continue
		}
		z, ok := o.zombies[k]
		if !ok {
			z = &Zombie{Key: k, Comm: sp.Comm, Cmdline: p.Cmdline, Since: now, ParentIsHarness: harnessChild}
			if j, ok := o.index[sp.PPID]; ok {
				z.Parent = o.snap[j].Key()
				if args, err := proctab.Cmdline(sp.PPID); err == nil && len(args) > 0 {
					z.ParentCmdline = args
				} else if pp, ok := o.procs[z.Parent]; ok {
					z.ParentCmdline = pp.Cmdline
				}
			}
			o.zombies[k] = z
		}
		z.Until = now
		if harnessChild && !o.ownedLocked(k) && o.reapableLocked(k, p, now) {
			o.reapLocked(k, z, p)
		}
	}
	for k, z := range o.zombies {
		i, ok := o.index[k.PID]
		if ok && o.snap[i].StartTime == k.StartTime && o.snap[i].State == 'Z' {
			continue
		}
		if !ok || o.snap[i].StartTime != k.StartTime {
			z.Reaped = true
		}
		o.finishZombieLocked(k, z)
	}
}

// reapableLocked says whether a zombie child of the harness may be reaped: it must be known
// as re-parented (seen with another parent first), or undeclared for ReapGrace.
func (o *Observer) reapableLocked(k Key, p *Process, now time.Time) bool {
	if p != nil && p.Own {
		return false
	}
	if p != nil && len(p.PPIDChain) > 0 && p.PPIDChain[0] != o.self {
		return true
	}
	if p != nil {
		return now.Sub(p.FirstSeen) >= o.cfg.ReapGrace
	}
	if n, ok := o.negative[k]; ok && !n.harnessAt.IsZero() {
		return now.Sub(n.harnessAt) >= o.cfg.ReapGrace
	}
	return false
}

// reapLocked reaps one zombie child of the harness with a targeted waitid (never wait4(-1),
// which would steal exit statuses from the runner's exec.Cmd children).
//
// It uses wait4 on that one pid for the exit status (the zombie is verified by (pid,
// starttime) in this very snapshot, and as its parent only the harness can reap it, so the pid
// cannot have been reused in between).
func (o *Observer) reapLocked(k Key, z *Zombie, p *Process) {
	var ws unix.WaitStatus
	wpid, err := unix.Wait4(k.PID, &ws, unix.WNOHANG, nil)
	if err != nil && !errors.Is(err, unix.ECHILD) {
		o.log.Warn("observer: reap orphan", "pid", k.PID, "err", err)
		return
	}
	if err == nil && wpid == 0 {
		return // not reapable yet (cannot happen for a zombie; try again at the next sample)
	}
	z.Reaped, z.ReapedByHarness = true, err == nil
	if p != nil && err == nil {
		p.ReapedByHarness = true
		st := ExitStatus{Code: ws.ExitStatus()}
		if ws.Signaled() {
			st = ExitStatus{Signal: ws.Signal()}
		}
		p.Status = &st
	}
	o.log.Debug("observer: reaped orphan", "pid", k.PID, "comm", z.Comm)
	o.finishZombieLocked(k, z)
}

func (o *Observer) finishZombieLocked(k Key, z *Zombie) {
	delete(o.zombies, k)
	o.zdone = append(o.zdone, *z)
	if len(o.zdone) > o.cfg.MaxExited {
		o.zdone = o.zdone[len(o.zdone)-o.cfg.MaxExited:]
	}
}

// enrichLocked reads fds, memory, wchan, cgroup and cmdline of every live attributed process.
// The periodic pass reads wchan only in states D, T and t (evidence for the stopped detector);
// a full pass (Refresh, Mark: detectors are looking) reads it for every process.
func (o *Observer) enrichLocked(now time.Time, full bool) {
	for k, p := range o.procs {
		if p.Exited || p.State == 'Z' {
			continue
		}
		u := Usage{At: now, FDs: -1}
		if fds, err := proctab.FDs(k.PID); err == nil {
			p.FDs, p.fdErr = fds, ""
			u.FDs = len(fds)
		} else {
			p.FDs, p.fdErr = nil, err.Error()
		}
		if rss, err := proctab.RSSAnon(k.PID); err == nil {
			p.RSSAnon = rss
			u.RSSAnon = rss
			if tr, ok := o.trough[k]; !ok || rss < tr {
				o.trough[k] = rss
			}
		}
		switch {
		case full || p.State == 'D' || p.State == 'T' || p.State == 't':
			p.Wchan = proctab.Wchan(k.PID) // evidence for the stopped/unkillable detector
			p.wchanSince = p.StateSince
		case p.wchanSince != p.StateSince:
			p.Wchan = "" // read in another state: no longer where it waits
		}
		// Otherwise a full pass read it in the state the process is still in: keep it. A
		// periodic pass that cleared it between a detector's Refresh and its reading left the
		// evidence without one (seen at load 50).
		if cg, err := proctab.Cgroup(k.PID); err == nil {
			p.Cgroup = cg
			if o.cgRel != "" {
				p.InCgroup = o.inRunCgroup(cg)
			}
		}
		if p.cmdComm != p.Comm || len(p.Cmdline) == 0 {
			// First enrichment, or an exec since the last read (fork→exec window).
			if args, err := proctab.Cmdline(k.PID); err == nil && len(args) > 0 {
				p.Cmdline, p.cmdComm = args, p.Comm
			}
		}
		// The pid may have been reused between the snapshot and these reads: verify.
		if sp, err := proctab.Stat(k.PID); err != nil || sp.StartTime != k.StartTime {
			continue
		}
		o.usage[k].add(u)
	}
}
