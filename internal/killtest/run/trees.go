package run

import (
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/proxyline/proxyline/internal/killtest/detect"
	"github.com/proxyline/proxyline/internal/killtest/observe"
	"github.com/proxyline/proxyline/internal/killtest/report"
	"github.com/proxyline/proxyline/internal/killtest/scenario"
	"github.com/proxyline/proxyline/internal/proctab"
)

// orphanDelivery is how long a process may outlive its parent before the tree calls it
// orphaned: room for a parent-death signal to be delivered.
const orphanDelivery = 200 * time.Millisecond

// faultTree is the process tree taken when a fault fired; what became of each process is worked
// out at the end of the run (report.Tree).
type faultTree struct {
	at time.Time // when the fault fired, for the report
	// taken is the time of the observer's sample the tree comes from: every process of the tree
	// was alive then, with its parent of then. What the observer records later (a death, a
	// re-parenting) carries the time of a later sample, which may have begun before the signal
	// went out (on a busy machine, often): so "after the fault" means after taken, not after at.
	taken   time.Time
	fault   string
	firing  int
	of      int
	signal  syscall.Signal
	procs   []observe.Process
	targets map[observe.Key]bool
}

// treeSnapshot is the attributed processes alive right before a fault signals (the observer's
// latest sample: the fault must not wait for a fresh one).
func (r *runner) treeSnapshot() []observe.Process { return r.live.obs.Alive() }

// recordTree keeps the tree taken before firing k of fault name (sent at `at`), with the
// processes it signalled.
func (r *runner) recordTree(snap []observe.Process, at time.Time, name string, k, of int, sig syscall.Signal, signalled []key) {
	t := faultTree{at: at, fault: name, firing: k, of: of, signal: sig, targets: map[observe.Key]bool{}}
	for _, p := range snap {
		if p.LastSeen.After(t.taken) {
			t.taken = p.LastSeen
		}
		if p.State != 'Z' {
			t.procs = append(t.procs, p)
		}
	}
	for _, s := range signalled {
		t.targets[s] = true
	}
	r.live.mu.Lock()
	r.live.trees = append(r.live.trees, t)
	r.live.mu.Unlock()
}

// decorate completes a judged result with what the runner knows and the detectors do not: the
// machine's boot time (to place process start times in the run), the start time of every
// process the runner started (component exits carry only a pid), the commands of parent chains,
// and the fate of each process of the fault trees. Call it after teardown.
func (r *runner) decorate(res *report.Scenario) {
	res.BootTime = bootTime()
	if r.live.obs == nil {
		return
	}
	all := r.live.obs.Processes()
	for i := range res.Checks {
		for j := range res.Checks[i].Evidence {
			e := &res.Checks[i].Evidence[j]
			if e.PID != 0 && e.StartTime == 0 {
				e.StartTime = r.live.startTimeOf(e.PID)
			}
			if len(e.Chain) == 0 && len(e.PPIDChain) > 0 {
				e.Chain = r.chainOf(*e, all)
			}
		}
	}
	res.Trees = r.fates(all, res.Started)
}

// chainOf gives each ancestor of e's parent chain its command: an attributed process alive
// when e was first seen, the harness, or PID 1. An ancestor the observer did not record (a
// pid it never attributed) keeps an empty command: reading /proc now could name another
// process that reused the pid. nil when no command is known.
func (r *runner) chainOf(e detect.Evidence, all []observe.Process) []detect.ChainEntry {
	seen := time.Now()
	for _, p := range all {
		if p.PID == e.PID && p.StartTime == e.StartTime {
			seen = p.FirstSeen
		}
	}
	out := make([]detect.ChainEntry, len(e.PPIDChain))
	known := false
	for i, pid := range e.PPIDChain {
		out[i].PID = pid
		switch {
		case pid == r.live.obs.HarnessPID():
			out[i].Command = "killtest (the harness)"
		case pid == 1:
			if args, err := proctab.Cmdline(1); err == nil && len(args) > 0 {
				out[i].Command = strings.Join(args, " ")
			} else {
				out[i].Command = "init"
			}
		default:
			for _, p := range all {
				if p.PID == pid && !p.FirstSeen.After(seen) && (p.DiedAt.IsZero() || !p.DiedAt.Before(seen)) {
					out[i].StartTime, out[i].Command = p.StartTime, cmdOf(p)
				}
			}
		}
		known = known || out[i].Command != ""
	}
	if !known {
		return nil
	}
	return out
}

func cmdOf(p observe.Process) string {
	if len(p.Cmdline) > 0 {
		return strings.Join(p.Cmdline, " ")
	}
	return "[" + p.Comm + "]"
}

// fates turns the fault trees into report trees: for each process, whether the fault signalled
// it, whether it was orphaned by this firing (its parent changed before the next firing or the
// stop), and when it ended.
func (r *runner) fates(all []observe.Process, start time.Time) []report.Tree {
	byKey := make(map[observe.Key]observe.Process, len(all))
	for _, p := range all {
		byKey[p.Key] = p
	}
	r.live.mu.Lock()
	trees := slices.Clone(r.live.trees)
	stop := r.stopStart()
	r.live.mu.Unlock()
	slices.SortFunc(trees, func(a, b faultTree) int { return a.at.Compare(b.at) })
	var out []report.Tree
	for i, t := range trees {
		until := stop
		if i+1 < len(trees) && (until.IsZero() || trees[i+1].taken.Before(until)) {
			until = trees[i+1].taken
		}
		rt := report.Tree{At: t.at.Sub(start), Fault: t.fault, Firing: t.firing, Of: t.of, Signal: scenario.SignalName(t.signal)}
		for _, p := range t.procs {
			rt.Procs = append(rt.Procs, fateOf(p, byKey, t, until, r.live.obs.HarnessPID()))
		}
		out = append(out, rt)
	}
	return out
}

// stopStart is when the runner began stopping the components at the scenario end (zero when it
// never did). Called with r.live.mu held.
func (r *runner) stopStart() time.Time {
	for _, e := range r.live.events {
		if e.Kind == "stop" && strings.HasPrefix(e.Detail, "scenario end") {
			return r.start.Add(e.At)
		}
	}
	return time.Time{}
}

func fateOf(p observe.Process, byKey map[observe.Key]observe.Process, t faultTree, until time.Time, harness int) report.TreeProc {
	tp := report.TreeProc{PID: p.PID, StartTime: p.StartTime, PPID: p.PPID, Command: cmdOf(p),
		State: string(rune(p.State)), Target: t.targets[p.Key]}
	last, ok := byKey[p.Key]
	if !ok {
		tp.Fate = "fate unknown (no longer in the observer's record)"
		return tp
	}
	if forking(p, t.procs) && len(last.Cmdline) > 0 {
		// Sampled in its fork→exec window it showed its parent's argv; the observer read the
		// command again after the exec.
		tp.Command = cmdOf(last)
	}
	// Re-parented after the fault and before the next firing or the stop: this firing
	// orphaned it (the stop's own re-parenting is the orphan check's business).
	when := last.ReparentedAt
	if when.IsZero() {
		for _, q := range t.procs {
			if q.PID == p.PPID {
				when = byKey[q.Key].DiedAt // re-parented elsewhere (no subreaper): when its parent died
			}
		}
	}
	// One that died within the delivery bound of a parent-death signal died with its parent
	// (HYGIENE: orphan definition (a)).
	lived := last.DiedAt.IsZero() || last.DiedAt.Sub(when) >= orphanDelivery
	if last.PPID != p.PPID && !when.IsZero() && !when.Before(t.taken) && (until.IsZero() || !when.After(until)) && lived {
		tp.Orphaned, tp.NewPPID, tp.OrphanedAfter = true, last.PPID, max(when.Sub(t.at), 0)
		if last.PPID == harness {
			tp.NewPPID = 0 // "re-parented to the harness" is what orphaned means here
		}
	}
	if o := last.Orphaned; !tp.Orphaned && o != nil && o.Parent.PID == p.PPID && (until.IsZero() || o.ParentAliveAt.Before(until)) {
		// No sample saw it re-parented (it ended first: on a busy machine samples are far
		// apart), but the observer saw it alive after its parent was gone.
		if lo, _ := last.WithoutParent(time.Now()); lo >= orphanDelivery {
			tp.Orphaned, tp.NewPPID, tp.OrphanedAfter = true, o.NewPPID, max(o.ParentDeadBy.Sub(t.at), 0)
			if o.NewPPID == harness {
				tp.NewPPID = 0
			}
		}
	}
	switch {
	case !last.DiedAt.IsZero() && !last.DiedAt.Before(t.taken):
		tp.Ended, tp.DiedAfter = true, max(last.DiedAt.Sub(t.at), 0)
	case last.DiedAt.IsZero() && !last.Exited:
		tp.Fate = "still alive when the observation ended"
	}
	return tp
}

// bootTime is when the machine booted, to the microsecond (process start times count clock
// ticks from it; /proc/stat's btime is whole seconds). Zero when unknown.
func bootTime() time.Time {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return time.Time{}
	}
	return time.Now().Add(-time.Duration(ts.Nano()))
}

// forking says whether p, in the tree procs, still showed its parent's command line: taken
// between its fork and its exec.
func forking(p observe.Process, procs []observe.Process) bool {
	for _, q := range procs {
		if q.PID == p.PPID {
			return q.Comm == p.Comm && slices.Equal(q.Cmdline, p.Cmdline)
		}
	}
	return false
}
