package watch

import (
	"fmt"
	"time"

	"github.com/proxyline/proxyline/internal/killtest/detect"
	"github.com/proxyline/proxyline/internal/proctab"
)

// candidate is a process seen orphaned, not yet for long enough to be a finding.
type candidate struct {
	first  time.Time // first scan that saw it orphaned
	reason string
	class  string
}

// orphanReason says why p, a member, is orphaned ("" when it is not): its rule's parent does not
// match, or (a member by cookie or cgroup, not a root) its parent does not belong to the system.
func (w *Watcher) orphanReason(p *proctab.Proc, m membership) (reason, class string) {
	in := w.known[p.Key()]
	if anyMatch(w.plan.allow, in.cmdline) {
		return "", ""
	}
	parent, pin := w.parentOf(p)
	parentDesc := fmt.Sprintf("pid %d (gone)", p.PPID)
	if parent != nil {
		cmd := "[" + parent.Comm + "]"
		if pin != nil {
			cmd = pin.cmdline
		}
		parentDesc = fmt.Sprintf("pid %d `%s`", parent.PID, cmd)
	}
	if m.rule != "" {
		for _, r := range w.plan.rules {
			if r.name != m.rule {
				continue
			}
			if pin == nil || !r.parent.MatchString(pin.cmdline) {
				return fmt.Sprintf("parent rule %s: its parent is %s, not one matching %q", r.name, parentDesc, r.parent), "wrong-parent"
			}
			return "", ""
		}
	}
	if m.root || !(m.cookie || m.cgroup) {
		return "", ""
	}
	if parent != nil {
		if _, ok := w.members[parent.Key()]; ok {
			return "", ""
		}
	}
	class = "re-parented"
	if m.cookie && !m.cgroup && len(w.plan.cgroups) > 0 {
		class = "escaped" // left the system's cgroups: a cgroup kill misses it
	}
	return fmt.Sprintf("belongs to the system (%s) but its parent, %s, does not: re-parented to init or a subreaper", m.how(), parentDesc), class
}

// parentOf returns p's parent in the last snapshot and its details (nil when gone or unread).
func (w *Watcher) parentOf(p *proctab.Proc) (*proctab.Proc, *procInfo) {
	parent := w.byPID[p.PPID]
	if parent == nil {
		return nil, nil
	}
	return parent, w.known[parent.Key()]
}

// orphans updates the candidates from the last snapshot and returns the findings: candidates
// orphaned for Orphans.After or longer. next is the earliest instant a candidate becomes due
// (zero when none is pending).
func (w *Watcher) orphans(now time.Time) (found []Finding, pending int, next time.Time) {
	after := w.cfg.File.Orphans.After.Or(DefaultOrphanAfter)
	seen := map[proctab.Key]bool{}
	for k, m := range w.members {
		p := w.byPID[k.PID]
		reason, class := w.orphanReason(p, m)
		if reason == "" {
			continue
		}
		seen[k] = true
		c := w.pending[k]
		if c == nil {
			c = &candidate{first: now}
			w.pending[k] = c
		}
		c.reason, c.class = reason, class
		if due := c.first.Add(after); now.Before(due) {
			pending++
			if next.IsZero() || due.Before(next) {
				next = due
			}
			continue
		}
		found = append(found, w.orphanFinding(p, m, c, now))
	}
	for k := range w.pending {
		if !seen[k] {
			delete(w.pending, k)
		}
	}
	return found, pending, next
}

func (w *Watcher) orphanFinding(p *proctab.Proc, m membership, c *candidate, now time.Time) Finding {
	in := w.known[p.Key()]
	ev := detect.Evidence{
		PID: p.PID, StartTime: p.StartTime, Cmdline: in.cmdline,
		PGID: p.PGID, SID: p.SID, State: string(rune(p.State)),
		Cookie: m.cookie, Cgroup: in.cgroup, Wchan: proctab.Wchan(p.PID),
		Class: c.class, Detail: c.reason,
		WithoutParentMin: now.Sub(c.first).Round(time.Millisecond),
	}
	if started := proctab.StartedAt(p.StartTime); !started.IsZero() {
		ev.Age = now.Sub(started).Round(time.Millisecond)
	}
	if p.SID == p.PID {
		ev.Detail += "; in a session of its own (setsid: a process-group kill missed it)"
	}
	ev.Chain, ev.PPIDChain = w.chain(p)
	return Finding{
		Kind:     KindOrphan,
		Key:      fmt.Sprintf("orphan/%d/%d", p.PID, p.StartTime),
		Summary:  fmt.Sprintf("orphan: pid %d `%s` for at least %s: %s", p.PID, in.cmdline, ev.WithoutParentMin, c.reason),
		Since:    c.first,
		Evidence: []detect.Evidence{ev},
	}
}

// chain is p's parent chain in the last snapshot, nearest first, with each ancestor's command.
func (w *Watcher) chain(p *proctab.Proc) ([]detect.ChainEntry, []int) {
	var chain []detect.ChainEntry
	var pids []int
	for cur, hops := w.byPID[p.PPID], 0; cur != nil && hops < 64; cur, hops = w.byPID[cur.PPID], hops+1 {
		cmd := "[" + cur.Comm + "]"
		if in := w.known[cur.Key()]; in != nil {
			cmd = in.cmdline
		}
		chain = append(chain, detect.ChainEntry{PID: cur.PID, StartTime: cur.StartTime, Command: cmd})
		pids = append(pids, cur.PID)
		if cur.PID <= 1 {
			break
		}
	}
	return chain, pids
}
