package detect

import (
	"context"
	"fmt"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/proxyline/proxyline/internal/killtest/observe"
)

// OrphanOptions configures Orphans.
type OrphanOptions struct {
	// Grace is how long after the components were stopped processes may take to exit. Orphans
	// polls until no attributed process is left or Grace has passed. Default 2s.
	Grace time.Duration
	// Poll is the polling period. Default 100ms.
	Poll time.Duration
}

// Sub-classes of orphans (Evidence.Class).
const (
	OrphanReparented = "re-parented"         // its parent died; the harness (subreaper) inherited it
	OrphanContained  = "contained"           // still in the run cgroup: a cgroup kill would have caught it
	OrphanEscaped    = "escaped"             // found by cookie only: it left the process tree and the cgroup
	OrphanDescendant = "descendant"          // a child of another leftover process
	OrphanComponent  = "component"           // a component the runner started is itself still running
	OrphanExited     = "re-parented, exited" // re-parented to the harness, lived past Grace, exited later
)

// Orphans is the orphan detector. Call it right after the runner stopped every component: it
// polls the observer until no attributed process is alive or opts.Grace has passed, then fails
// for every attributed process still alive (zombies are the Zombies detector's), and for every
// re-parented orphan that exited but lived longer than Grace after it was re-parented (the
// harness reaped it: it ran unsupervised).
func Orphans(ctx context.Context, o *observe.Observer, opts OrphanOptions) Result {
	const check = "orphans"
	grace := opts.Grace
	if grace <= 0 {
		grace = 2 * time.Second
	}
	poll := opts.Poll
	if poll <= 0 {
		poll = 100 * time.Millisecond
	}
	stoppedAt := time.Now()
	var alive []observe.Process
	if err := pollUntil(ctx, stoppedAt.Add(grace), poll, func() (bool, error) {
		if err := o.Refresh(); err != nil {
			return false, err
		}
		alive = liveOnly(o.Alive())
		return len(alive) == 0, nil
	}); err != nil {
		return unknown(check, fmt.Sprintf("could not watch the process table: %v", err))
	}
	now := time.Now()
	caps := o.Capabilities()
	res := Result{Check: check}
	all := o.Processes()
	tree := treeOf{harness: o.HarnessPID(), ownPGIDs: map[int]bool{}, ownSIDs: map[int]bool{}}
	if sid, err := unix.Getsid(0); err == nil {
		tree.ownSIDs[sid] = true
	}
	for _, p := range all {
		if p.Own {
			tree.ownPGIDs[p.PGID] = true
			tree.ownSIDs[p.SID] = true
		}
	}
	for _, p := range alive {
		e := evidenceOf(p, now)
		e.Class, e.Detail = classifyOrphan(p, tree, caps)
		res.Evidence = append(res.Evidence, e)
	}
	exited := 0
	for _, p := range all {
		if !p.Exited || !p.Reparented || p.Own || p.ReparentedAt.IsZero() || p.DiedAt.IsZero() {
			continue
		}
		lived := p.DiedAt.Sub(p.ReparentedAt)
		if lived < grace {
			continue
		}
		e := evidenceOf(p, now)
		e.Class = OrphanExited
		e.Detail = fmt.Sprintf("its parent exited without stopping it; it ran %s re-parented to the harness, then exited (reaped by harness: %t)",
			lived.Round(time.Millisecond), p.ReapedByHarness)
		res.Evidence = append(res.Evidence, e)
		exited++
	}
	switch {
	case len(res.Evidence) > 0:
		res.Verdict = Fail
		res.Summary = fmt.Sprintf("%d process(es) alive %s after stop, %d more re-parented orphan(s) ran past the grace and exited",
			len(alive), grace, exited)
	case caps.EnvironDenied > 0:
		res = unknown(check, fmt.Sprintf("no orphan found, but the environment of %d process(es) could not be read to look for the cookie (%s)",
			caps.EnvironDenied, caps.EnvironDeniedExample))
	default:
		res = pass(check, fmt.Sprintf("no attributed process alive %s after stop%s", grace, layersNote(caps)))
	}
	return res
}

func layersNote(c observe.Capabilities) string {
	var missing []string
	if !c.Subreaper {
		missing = append(missing, "subreaper ("+c.SubreaperError+")")
	}
	if !c.Cgroup && c.CgroupError != "" {
		missing = append(missing, "run cgroup ("+c.CgroupError+")")
	}
	if len(missing) == 0 {
		return ""
	}
	return "; searched by cookie without " + strings.Join(missing, ", ")
}

// liveOnly drops zombies: they have exited.
func liveOnly(ps []observe.Process) []observe.Process {
	out := ps[:0]
	for _, p := range ps {
		if p.State != 'Z' && p.State != 'X' {
			out = append(out, p)
		}
	}
	return out
}

// treeOf is what classifyOrphan knows of the run's process tree.
type treeOf struct {
	harness  int
	ownPGIDs map[int]bool // process groups of the runner's components
	ownSIDs  map[int]bool // sessions of the harness and of the runner's components
}

// classifyOrphan returns the sub-class of a leftover process and which layer failed.
func classifyOrphan(p observe.Process, tree treeOf, caps observe.Capabilities) (class, detail string) {
	var why []string
	switch {
	case !tree.ownSIDs[p.SID]:
		why = append(why, fmt.Sprintf("it is in a session of its own (setsid by pid %d), so a process-group kill of the component missed it", p.SID))
	case !tree.ownPGIDs[p.PGID]:
		why = append(why, fmt.Sprintf("it is in a process group of its own (pgid %d), so a group kill of the component missed it", p.PGID))
	}
	if p.Cookie {
		why = append(why, "found by the run cookie")
	} else {
		why = append(why, "it does not carry the run cookie (environment cleared?)")
	}
	harness := tree.harness
	switch {
	case p.Own:
		return OrphanComponent, "a component the runner started did not exit"
	case p.PPID == harness:
		return OrphanReparented, "its parent exited without stopping it (no parent-death signal, no group/cgroup kill); " + strings.Join(why, "; ")
	case caps.Cgroup && p.InCgroup:
		return OrphanContained, "still in the run cgroup: a cgroup.kill would have ended it; " + strings.Join(why, "; ")
	case p.Cookie && (p.PPID == 1 || !caps.Subreaper):
		return OrphanEscaped, fmt.Sprintf("re-parented to pid %d, outside the harness and the cgroup; ", p.PPID) + strings.Join(why, "; ")
	case p.Cookie:
		return OrphanEscaped, fmt.Sprintf("parent pid %d; ", p.PPID) + strings.Join(why, "; ")
	}
	return OrphanDescendant, fmt.Sprintf("child of pid %d, attributed by %s; ", p.PPID, p.Attribution) + strings.Join(why, "; ")
}

// pollUntil calls done every period until it returns true, the deadline passes or ctx ends.
// It calls done at least once.
func pollUntil(ctx context.Context, deadline time.Time, period time.Duration, done func() (bool, error)) error {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		ok, err := done()
		if err != nil || ok || !time.Now().Before(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
