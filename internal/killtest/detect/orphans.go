package detect

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/proxyline/proxyline/internal/killtest/human"
	"github.com/proxyline/proxyline/internal/killtest/observe"
	"github.com/proxyline/proxyline/internal/proctab"
)

// OrphanOptions configures Orphans.
type OrphanOptions struct {
	// Grace is how long after the components were stopped processes may take to exit. Orphans
	// polls until no attributed process is left or Grace has passed. It excuses only processes
	// left at the end: a process orphaned during the run is an orphan whatever the grace.
	// Default 2s.
	Grace time.Duration
	// Poll is the polling period. Default 100ms.
	Poll time.Duration
	// Bound is the delivery bound of a parent-death signal: a process that outlived its parent
	// by more, during the run, is an orphan. It is judged on a lower bound of that time, so a
	// child killed by a parent-death signal microseconds after its parent never fails. Default
	// 200ms (observe.Config.OrphanBound should match).
	Bound time.Duration
	// Blind is the longest stretch without a sample of the process table (before the stop
	// phase) after which a check that found no orphan says unknown rather than pass, when the
	// harness is a subreaper with a run cgroup: an orphan re-parented to the harness that dies
	// inside such a stretch is still seen, as a zombie in the run cgroup that only the harness
	// can reap, at the next sample (and judged on the bounds it then has). Only what left both
	// the harness's tree and the cgroup goes unseen. Default 2s: the seed's checker timeout.
	// Without a subreaper or a run cgroup nothing vouches for a stretch longer than Bound: an
	// orphan that outlived its parent by more than Bound could be born and gone inside it, so
	// the check says unknown after a stretch over Bound. At load 46 on 2 cores a 1.39 s stall
	// was seen.
	Blind time.Duration
	// StopAt is when the stop phase began. Default: the observer's (BeginStop), else now.
	StopAt time.Time
	// Origin is the instant times in the evidence are counted from ("+1.234s"), the scenario's
	// start. Default: StopAt (times then read "-0.5s", before the stop).
	Origin time.Time
	// Allow are regular expressions of the command lines of processes the system deliberately
	// daemonizes at start-up: a process orphaned inside one of the Startups windows whose
	// command line matches is allowed (and named in the summary), during the run and at the end.
	Allow []*regexp.Regexp
	// Startups are the windows in which a component started up (from its start to readiness).
	Startups []Window
	// Signals are the signals the harness sent (faults, stops), to say what ended an orphan.
	Signals []Signal
	// Exits are when the components' main processes exited, to say when an orphan died right
	// after a sibling component stopped (it was blocked on it).
	Exits []ComponentExit
}

// Window is a named stretch of time (a component's start-up).
type Window struct {
	Name     string
	From, To time.Time
}

// Signal is one signal the harness sent: to one process (Key), or to a process group (Group).
type Signal struct {
	At time.Time
	// AliveAt is when the target was last known alive (not exited), right before the signal;
	// zero when not known. It narrows the death time of a parent the harness killed, and so
	// how long its orphans can have outlived it.
	AliveAt time.Time
	Key     observe.Key // zero when Group is set
	Group   int
	Signal  syscall.Signal
	By      string // who sent it, for the evidence: "fault kill-mid-task", "stop of worker"
}

// ComponentExit is the end of a component instance's main process.
type ComponentExit struct {
	Component string
	Key       observe.Key // its main process
	StopAt    time.Time   // when the runner began to stop it (zero when it did not)
	At        time.Time   // when it had exited
	Why       string      // "stopped at the end", "stopped for a restart", "SIGKILLed by a fault", "ended on its own"
}

func (o OrphanOptions) withDefaults() OrphanOptions {
	if o.Grace <= 0 {
		o.Grace = 2 * time.Second
	}
	if o.Poll <= 0 {
		o.Poll = 100 * time.Millisecond
	}
	if o.Bound <= 0 {
		o.Bound = 200 * time.Millisecond
	}
	if o.Blind <= 0 {
		o.Blind = 2 * time.Second
	}
	return o
}

// Sub-classes of orphans (Evidence.Class).
const (
	OrphanReparented = "re-parented" // its parent died; the harness (subreaper) inherited it
	OrphanContained  = "contained"   // still in the run cgroup: a cgroup kill would have caught it
	OrphanEscaped    = "escaped"     // found by cookie only: it left the process tree and the cgroup
	OrphanDescendant = "descendant"  // a child of another leftover process
	OrphanComponent  = "component"   // a component the runner started is itself still running
	// OrphanDuringRun is a process orphaned during the run that is gone by the end: it outlived
	// its parent by more than the bound, then ended (by itself, by a signal of the harness, or
	// right after a sibling component stopped).
	OrphanDuringRun = "orphaned during the run"
	// OrphanAfterStop is a process orphaned by the stop phase (its parent exited when its
	// component was stopped) that outlived its parent by more than the grace, then ended before
	// the check (typically by the stop of a sibling component it was blocked on).
	OrphanAfterStop = "orphaned by a stop"
)

// Orphans is the orphan detector (HYGIENE.md's two-way definition). Call it right after the
// runner stopped every component. A process is an orphan when
//
//   - (a) orphaned during the run: its parent died before the stop phase while it was alive, and
//     it outlived the parent by more than Bound (judged on a lower bound), whatever ended it
//     later; or
//   - (b) left at the end: it is still alive Grace after the stop (polled, not slept), or its
//     parent died in the stop phase and it outlived the parent by more than Grace (judged on a
//     lower bound), whatever ended it later.
//
// Processes matching Allow that were orphaned while a component started up are allowed.
func Orphans(ctx context.Context, o *observe.Observer, opts OrphanOptions) Result {
	const check = "orphans"
	opts = opts.withDefaults()
	if opts.StopAt.IsZero() {
		opts.StopAt = o.StopPhase()
	}
	called := time.Now()
	if opts.StopAt.IsZero() {
		opts.StopAt = called
	}
	if opts.Origin.IsZero() {
		opts.Origin = opts.StopAt
	}
	var alive []observe.Process
	if err := pollUntil(ctx, called.Add(opts.Grace), opts.Poll, func() (bool, error) {
		if err := o.Refresh(); err != nil {
			return false, err
		}
		alive = liveOnly(o.Alive())
		return len(alive) == 0, nil
	}); err != nil {
		return unknown(check, fmt.Sprintf("could not watch the process table: %v", err))
	}
	now := time.Now()
	j := orphanJudge{opts: opts, now: now, caps: o.Capabilities(), tree: treeOfRun(o)}
	left := map[observe.Key]bool{}
	for _, p := range alive {
		left[p.Key] = true
	}
	for _, p := range o.Processes() {
		j.judge(p, left[p.Key])
	}
	return j.result(len(alive))
}

// treeOfRun collects the process groups and sessions of the runner's components.
func treeOfRun(o *observe.Observer) treeOf {
	tree := treeOf{harness: o.HarnessPID(), ownPGIDs: map[int]bool{}, ownSIDs: map[int]bool{}}
	if sid, err := unix.Getsid(0); err == nil {
		tree.ownSIDs[sid] = true
	}
	for _, p := range o.Processes() {
		if p.Own {
			tree.ownPGIDs[p.PGID] = true
			tree.ownSIDs[p.SID] = true
		}
	}
	return tree
}

// orphanJudge accumulates the verdict over every attributed process.
type orphanJudge struct {
	opts      OrphanOptions
	now       time.Time
	caps      observe.Capabilities
	tree      treeOf
	evidence  []Evidence
	during    int                             // orphaned during the run (a)
	afterStop int                             // orphaned in the stop phase, gone by the end, outlived the parent by more than the grace (b)
	atEnd     int                             // left at the end (b)
	allowed   []string                        // allowed daemons
	uncertain []string                        // orphanings the bounds could not settle: maybe over the bound, maybe not
	born      func(observe.Process) time.Time // when a process started; nil: from its start time
	settled   int                             // orphanings known to be within the bound (proper parent-death handling)
}

// narrowed returns p with its parent's last known alive time moved up to the moment right
// before the harness signalled the parent, when the harness saw it alive then and that is later
// than the samples: a parent killed by a fault died after that moment, which bounds how long
// its children outlived it far tighter than a sample up to 100 ms (or a stall) earlier.
func (j *orphanJudge) narrowed(p observe.Process) observe.Process {
	if p.Orphaned == nil {
		return p
	}
	o := *p.Orphaned
	for _, s := range j.opts.Signals {
		if s.Key == o.Parent && s.Key.PID != 0 && s.AliveAt.After(o.ParentAliveAt) && !s.AliveAt.After(o.ParentDeadBy) {
			o.ParentAliveAt = s.AliveAt
		}
	}
	p.Orphaned = &o
	return p
}

// bornAt returns when p started, to the start of its clock tick (never later than the real
// start).
func (j *orphanJudge) bornAt(p observe.Process) time.Time {
	if j.born != nil {
		return j.born(p)
	}
	return proctab.StartedAt(p.StartTime)
}

// blind is the longest sampling stretch the check can vouch for (OrphanOptions.Blind).
func (j *orphanJudge) blind() time.Duration {
	if j.caps.Subreaper && j.caps.Cgroup {
		return j.opts.Blind
	}
	return j.opts.Bound
}

// judge looks at one attributed process; leftover says it is alive after the grace.
func (j *orphanJudge) judge(p observe.Process, leftover bool) {
	if p.Own && !leftover {
		return
	}
	p = j.narrowed(p)
	kind := j.orphaning(p)
	if kind == orphanAllowed {
		j.allowed = append(j.allowed, fmt.Sprintf("pid %d `%s` (%s)", p.PID, cmdline(p.Cmdline, p.Comm), j.startupOf(p)))
		return
	}
	if !leftover && kind == notOrphaned {
		return
	}
	e := evidenceOf(p, j.now)
	var what []string
	switch kind {
	case orphanDuring:
		j.during++
		lo, hi := p.WithoutParent(j.now)
		e.WithoutParentMin, e.WithoutParentMax = lo, hi
		what = append(what, j.orphanedText(p, lo, hi))
	case orphanStop:
		j.afterStop++
		lo, hi := p.WithoutParent(j.now)
		e.WithoutParentMin, e.WithoutParentMax = lo, hi
		what = append(what, j.stopOrphanedText(p, lo, hi))
	}
	if leftover {
		j.atEnd++
		e.Class, e.Detail = classifyOrphan(p, j.tree, j.caps)
		what = append(what, fmt.Sprintf("still alive %s after the stop", hd(j.opts.Grace)))
		e.Ended = "left behind: still alive at the end (the harness's teardown kills it)"
		what = append(what, e.Detail)
	} else {
		e.Class = OrphanDuringRun
		if kind == orphanStop {
			e.Class = OrphanAfterStop
		}
		e.Ended = j.endedBy(p)
		what = append(what, "then "+e.Ended)
	}
	e.Detail = strings.Join(what, "; ")
	j.evidence = append(j.evidence, e)
}

type orphanKind int

const (
	notOrphaned   orphanKind = iota
	orphanDuring             // (a)
	orphanStop               // (b) orphaned in the stop phase, outlived its parent by more than the grace
	orphanAllowed            // a deliberate daemon
)

// orphaning judges (a) for p: orphaned before the stop phase and known to have outlived its
// parent by more than Bound.
func (j *orphanJudge) orphaning(p observe.Process) orphanKind {
	or := p.Orphaned
	if or == nil || p.Own {
		return notOrphaned
	}
	if j.allowedDaemon(p) {
		return orphanAllowed
	}
	lo, hi := p.WithoutParent(j.now)
	if !or.ParentDeadBy.Before(j.opts.StopAt) {
		// Its parent died in the stop phase: the grace applies (b), counted from the parent's
		// death, so a process that outlived it by more is an orphan even when the stop of a
		// sibling component ended it before the check looked (the runner stops the next
		// component only once such processes ended or outlived the grace).
		if lo > j.opts.Grace {
			return orphanStop
		}
		return notOrphaned
	}
	switch {
	case lo > j.opts.Bound:
		return orphanDuring
	case hi > j.opts.Bound:
		// Not known to have outlived its parent by more than the bound, nor known not to (a
		// machine too busy to sample in time, or a harness starved of CPU): an orphan of 450 ms
		// seen through 700 ms gaps looks like this, and so does a child that a parent-death
		// signal ended at once. Never a pass: the check cannot tell.
		j.uncertain = append(j.uncertain, fmt.Sprintf("pid %d `%s` ran between %s and %s without its parent",
			p.PID, cmdline(p.Cmdline, p.Comm), fmtBound(lo), hd(hi)))
	case hi > 0:
		j.settled++
	}
	return notOrphaned
}

// allowedDaemon: p matches Allow and was orphaned while a component started up.
func (j *orphanJudge) allowedDaemon(p observe.Process) bool {
	if len(j.opts.Allow) == 0 || j.startupOf(p) == "" {
		return false
	}
	line := cmdline(p.Cmdline, p.Comm)
	for _, re := range j.opts.Allow {
		if re.MatchString(line) {
			return true
		}
	}
	return false
}

// startupOf names the start-up window p was born and orphaned in ("" when none). Born in it
// too: a process started earlier (a worker's checker) and orphaned while another component
// restarted is no daemon of that start-up.
func (j *orphanJudge) startupOf(p observe.Process) string {
	or := p.Orphaned
	if or == nil {
		return ""
	}
	born := j.bornAt(p)
	for _, w := range j.opts.Startups {
		if born.Before(w.From.Add(-proctab.TicksToDuration(1))) || born.After(w.To) {
			continue
		}
		if !or.ParentDeadBy.Before(w.From) && !or.ParentAliveAt.After(w.To) {
			return "daemonized while " + w.Name + " started up"
		}
	}
	return ""
}

// orphanedText says when the parent died and how long p ran without it.
func (j *orphanJudge) orphanedText(p observe.Process, lo, hi time.Duration) string {
	or := p.Orphaned
	parent := "its parent"
	if or.ParentCommand != "" {
		parent = fmt.Sprintf("its parent pid %d `%s`", or.Parent.PID, or.ParentCommand)
	}
	s := fmt.Sprintf("orphaned during the run: %s died at %s", parent, j.at(or.ParentDeadBy))
	if or.AtFirstSight {
		s = fmt.Sprintf("orphaned during the run: first seen already re-parented (born and orphaned between two samples, by %s)", j.at(or.ParentDeadBy))
	}
	until := "until now"
	if !p.DeadBy.IsZero() {
		until = "before it ended"
	}
	return s + fmt.Sprintf("; it ran at least %s (at most %s) without it %s, more than the %s a parent-death signal needs",
		hd(lo), hd(hi), until, hd(j.opts.Bound))
}

// stopOrphanedText says when the parent of a process orphaned in the stop phase died and how
// long the process ran without it.
func (j *orphanJudge) stopOrphanedText(p observe.Process, lo, hi time.Duration) string {
	or := p.Orphaned
	parent := "its parent"
	if or.ParentCommand != "" {
		parent = fmt.Sprintf("its parent pid %d `%s`", or.Parent.PID, or.ParentCommand)
	}
	return fmt.Sprintf("orphaned by the stop: %s died at %s, in the stop phase; it ran at least %s (at most %s) without it, more than the %s grace",
		parent, j.at(or.ParentDeadBy), hd(lo), hd(hi), hd(j.opts.Grace))
}

// endedBy says what ended a process orphaned during the run.
func (j *orphanJudge) endedBy(p observe.Process) string {
	var s string
	switch st := p.Status; {
	case st != nil && st.Signal != 0:
		s = "was killed by " + signalName(st.Signal)
		if by := j.signalledBy(p, st.Signal); by != "" {
			s += " from the harness (" + by + ")"
		} else {
			s += " (not sent by the harness)"
		}
	case st != nil:
		s = fmt.Sprintf("exited by itself with status %d", st.Code)
	default:
		s = "exited (reaped by its parent of then, status unknown)"
	}
	s += fmt.Sprintf(" (by %s)", j.at(p.DeadBy))
	if c := j.exitBefore(p); c != "" {
		s += ", " + c
	}
	return s
}

// signalledBy finds the harness's signal sig to p (itself or its process group) sent before it
// died.
func (j *orphanJudge) signalledBy(p observe.Process, sig syscall.Signal) string {
	by := ""
	for _, s := range j.opts.Signals {
		if s.Signal != sig || (!p.DeadBy.IsZero() && s.At.After(p.DeadBy)) {
			continue
		}
		if (s.Key != observe.Key{} && s.Key == p.Key) || (s.Group > 1 && s.Group == p.PGID) {
			by = s.By
		}
	}
	return by
}

// siblingWindow is how soon after a component's exit an orphan's death is blamed on that exit.
const siblingWindow = time.Second

// exitBefore names the component (not the orphan's own parent) whose end p's death followed
// closely: p died after that component began to stop (or exited) and within siblingWindow of
// its exit. An orphan blocked on a sibling (a server, a queue) dies that way.
func (j *orphanJudge) exitBefore(p observe.Process) string {
	if p.DeadBy.IsZero() || p.Orphaned == nil {
		return ""
	}
	var best *ComponentExit
	for i, e := range j.opts.Exits {
		from := e.StopAt
		if from.IsZero() {
			from = e.At
		}
		if e.Key == p.Orphaned.Parent || from.After(p.DeadBy) || from.Before(p.Orphaned.ParentDeadBy) ||
			p.DeadBy.Sub(e.At) > siblingWindow || (best != nil && e.At.Before(best.At)) {
			continue
		}
		best = &j.opts.Exits[i]
	}
	if best == nil {
		return ""
	}
	from, what := best.At, "exited"
	if !best.StopAt.IsZero() {
		from, what = best.StopAt, "began to stop"
	}
	return fmt.Sprintf("at most %s after component %s %s (%s): it was waiting on it",
		hd(p.DeadBy.Sub(from)), best.Component, what, best.Why)
}

func (j *orphanJudge) at(t time.Time) string {
	d := t.Sub(j.opts.Origin)
	if d >= 0 {
		return "+" + hd(d)
	}
	return hd(d)
}

// result turns what was judged into the check's verdict.
func (j *orphanJudge) result(alive int) Result {
	res := Result{Check: "orphans", Evidence: j.evidence}
	var notes []string
	if len(j.allowed) > 0 {
		notes = append(notes, "allowed: "+strings.Join(j.allowed, ", "))
	}
	if j.caps.EnvironIgnored > 0 {
		notes = append(notes, fmt.Sprintf("%d process(es) outside the run with an unreadable environment ignored (e.g. %s)",
			j.caps.EnvironIgnored, j.caps.EnvironIgnoredExample))
	}
	tail := ""
	if len(notes) > 0 {
		tail = "; " + strings.Join(notes, "; ")
	}
	switch {
	case len(j.evidence) > 0:
		res.Verdict = Fail
		stop := ""
		if j.afterStop > 0 {
			stop = fmt.Sprintf(", %d orphaned by a component's stop that outlived their parent by more than %s and were ended later",
				j.afterStop, hd(j.opts.Grace))
		}
		res.Summary = fmt.Sprintf("%d process(es) orphaned during the run (outlived their parent by more than %s)%s, %d left alive %s after the stop%s",
			j.during, hd(j.opts.Bound), stop, j.atEnd, hd(j.opts.Grace), tail)
	case len(j.uncertain) > 0:
		named := j.uncertain
		if len(named) > 5 {
			named = append(slices.Clip(named[:5]), fmt.Sprintf("%d more", len(j.uncertain)-5))
		}
		res = unknown("orphans", fmt.Sprintf("no orphan found, but the observer could not tell whether %d process(es) outlived their parent by more than %s: %s%s",
			len(j.uncertain), hd(j.opts.Bound), strings.Join(named, "; "), tail))
	case j.caps.MaxSampleGap > j.blind():
		res = unknown("orphans", fmt.Sprintf("no orphan found, but the observer took no sample of the process table for %s (from %s, a stalled machine): an orphan born and gone within that time could not be seen%s",
			hd(j.caps.MaxSampleGap), j.at(j.caps.MaxSampleGapAt), tail))
	case j.caps.EnvironDenied > 0:
		res = unknown("orphans", fmt.Sprintf("no orphan found, but the environment of %d process(es) of the run's tree could not be read to look for the cookie (%s)%s",
			j.caps.EnvironDenied, j.caps.EnvironDeniedExample, tail))
	default:
		s := fmt.Sprintf("no process outlived its parent by more than %s during the run, none alive %s after the stop", hd(j.opts.Bound), hd(j.opts.Grace))
		if j.settled > 0 {
			s += fmt.Sprintf("; %d ended within %s of their parent's death", j.settled, hd(j.opts.Bound))
		}
		if g := j.caps.MaxSampleGap; g > j.opts.Bound {
			s += fmt.Sprintf("; samples of the process table were up to %s apart (from %s): an orphan living less than that could have been missed", hd(g), j.at(j.caps.MaxSampleGapAt))
		}
		res = pass("orphans", s+timingNote(j.caps)+layersNote(j.caps)+tail)
	}
	return res
}

func timingNote(c observe.Capabilities) string {
	if c.Pidfd && c.PidfdError == "" {
		return ""
	}
	return "; exit times from 10 Hz samples only (" + c.PidfdError + "): an orphan outliving its parent by less than about 300 ms may be missed"
}

func fmtBound(d time.Duration) string {
	if d < 0 {
		return "0 s"
	}
	return hd(d)
}

func signalName(s syscall.Signal) string {
	if n := unix.SignalName(s); n != "" {
		return n
	}
	return fmt.Sprintf("signal %d", int(s))
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

// hd writes a duration for people ("1.07 s", "200 ms"), as every killtest report does.
func hd(d time.Duration) string { return human.Duration(d) }

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
