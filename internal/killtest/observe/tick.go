package observe

import (
	"errors"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/proxyline/proxyline/internal/proctab"
)

// tickLocked takes one sample: snapshot, attribution of new processes, exits, zombies and
// reaping; with enrich (or when EnrichEvery has passed) also enriches attributed processes.
func (o *Observer) tickLocked(now time.Time, enrich bool) error {
	snap, err := o.reader.Snapshot(o.snap)
	o.snap = snap
	if err != nil {
		return err
	}
	o.gen++
	clear(o.index)
	for i := range snap {
		o.index[snap[i].PID] = i
	}
	for i := range snap {
		o.observeLocked(&snap[i], now)
	}
	o.sweepLocked(now)
	o.zombiesTickLocked(now)
	if enrich || now.Sub(o.lastRich) >= o.cfg.EnrichEvery {
		o.enrichLocked(now, enrich)
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

// observeLocked updates or attributes one process of the snapshot.
func (o *Observer) observeLocked(sp *proctab.Proc, now time.Time) {
	k := sp.Key()
	if p, ok := o.procs[k]; ok {
		o.seenGen[k] = o.gen
		if p.Comm != sp.Comm && sp.State != 'Z' {
			// It exec'ed: its argv changed (the fork→exec window showed the parent's).
			if args, err := proctab.Cmdline(k.PID); err == nil && len(args) > 0 {
				p.Cmdline, p.cmdComm = args, sp.Comm
			}
		}
		p.PPID, p.PGID, p.SID, p.Comm, p.LastSeen = sp.PPID, sp.PGID, sp.SID, sp.Comm, now
		if p.State != sp.State {
			p.State, p.StateSince = sp.State, now
			if sp.State == 'Z' && p.DiedAt.IsZero() {
				p.DiedAt = now
			}
		}
		if sp.PPID == o.self && !p.Own && !o.ownedLocked(k) && !p.Reparented {
			p.Reparented, p.ReparentedAt = true, now
			o.log.Debug("observer: re-parented to harness", "pid", k.PID, "comm", sp.Comm)
		}
		return
	}
	if n, ok := o.negative[k]; ok {
		n.gen = o.gen
		harnessChild := sp.PPID == o.self && !o.ownedLocked(k)
		switch {
		case o.ownedLocked(k):
			o.attributeLocked(sp, now, ByOwn, false, false)
		case harnessChild && n.harnessAt.IsZero():
			// First seen elsewhere and now a child of the harness: re-parented.
			o.attributeLocked(sp, now, ByReparented, false, false)
		case n.comm != sp.Comm && n.rechecks < maxRechecks:
			// It exec'ed since we read its environment (`env K=V cmd` execs twice): read it
			// again, a bounded number of times.
			n.comm = sp.Comm
			n.rechecks++
			if has, ok := o.hasCookieLocked(sp.PID, true); ok && has {
				o.attributeLocked(sp, now, ByCookie, true, false)
			}
		}
		return
	}
	// A new process.
	cookie, _ := o.hasCookieLocked(sp.PID, o.gen > 1)
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
		o.attributeLocked(sp, now, ByOwn, cookie, inCg)
	case cookie:
		o.attributeLocked(sp, now, ByCookie, cookie, inCg)
	case inCg:
		o.attributeLocked(sp, now, ByCgroup, cookie, inCg)
	case parentAttributed:
		o.attributeLocked(sp, now, ByDescendant, cookie, inCg)
	default:
		n := &negEntry{gen: o.gen, comm: sp.Comm}
		if sp.PPID == o.self {
			// First seen as a child of the harness, without cookie: the runner's child between
			// exec.Cmd.Start and Own, or one of the harness's helpers (a probe command). Not
			// attributed; reaped only if it stays a zombie for ReapGrace.
			n.harnessAt = now
		}
		o.negative[k] = n
	}
}

func (o *Observer) inRunCgroup(cg string) bool {
	return cg == o.cgRel || (len(cg) > len(o.cgRel) && cg[:len(o.cgRel)] == o.cgRel && (o.cgRel == "/" || cg[len(o.cgRel)] == '/'))
}

// hasCookieLocked reads the environment of pid. ok is false when it could not be read; count
// says whether a permission error leaves a doubt worth reporting (not for processes that existed
// before Start: they cannot carry this run's fresh cookie).
func (o *Observer) hasCookieLocked(pid int, count bool) (has, ok bool) {
	has, err := proctab.HasEnv(pid, o.cfg.Cookie)
	if err != nil {
		if count && errors.Is(err, os.ErrPermission) {
			if o.caps.EnvironDenied == 0 {
				o.caps.EnvironDeniedExample = err.Error()
			}
			o.caps.EnvironDenied++
		}
		return false, false
	}
	return has, true
}

func (o *Observer) attributeLocked(sp *proctab.Proc, now time.Time, how Attribution, cookie, inCg bool) *Process {
	k := sp.Key()
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
	// Parent chain at first sight, nearest first.
	for pid, n := sp.PPID, 0; pid > 0 && n < 64; n++ {
		p.PPIDChain = append(p.PPIDChain, pid)
		i, ok := o.index[pid]
		if !ok || pid == 1 || pid == o.self {
			break
		}
		pid = o.snap[i].PPID
	}
	if args, err := proctab.Cmdline(k.PID); err == nil && len(args) > 0 {
		p.Cmdline, p.cmdComm = args, sp.Comm
	}
	if !cookie && how != ByCookie {
		// Not read yet for descendants attributed by tree: it is cheap and useful evidence.
		if has, ok := o.hasCookieLocked(k.PID, false); ok {
			p.Cookie = has
		}
	}
	o.procs[k] = p
	o.seenGen[k] = o.gen
	o.usage[k] = newSeries[Usage](o.cfg.MaxPoints)
	o.log.Debug("observer: attributed", "pid", k.PID, "comm", sp.Comm, "how", how)
	return p
}

// sweepLocked marks attributed processes missing from this snapshot as exited and forgets
// non-attributed ones that left.
func (o *Observer) sweepLocked(now time.Time) {
	for k, n := range o.negative {
		if n.gen != o.gen {
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
		delete(o.seenGen, k)
		o.exited = append(o.exited, k)
	}
	for len(o.exited) > o.cfg.MaxExited {
		k := o.exited[0]
		o.exited = o.exited[1:]
		delete(o.procs, k)
		delete(o.usage, k)
		delete(o.trough, k)
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
func (o *Observer) reapLocked(k Key, z *Zombie, p *Process) {
	var info unix.Siginfo
	err := unix.Waitid(unix.P_PID, k.PID, &info, unix.WEXITED|unix.WNOHANG, nil)
	if err != nil && !errors.Is(err, unix.ECHILD) {
		o.log.Warn("observer: reap orphan", "pid", k.PID, "err", err)
		return
	}
	z.Reaped, z.ReapedByHarness = true, err == nil
	if p != nil && err == nil {
		p.ReapedByHarness = true
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
		if full || p.State == 'D' || p.State == 'T' || p.State == 't' {
			p.Wchan = proctab.Wchan(k.PID) // evidence for the stopped/unkillable detector
		} else {
			p.Wchan = ""
		}
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
