package run

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"syscall"
	"time"

	"github.com/proxyline/proxyline/internal/killtest/detect"
	"github.com/proxyline/proxyline/internal/killtest/observe"
	"github.com/proxyline/proxyline/internal/killtest/scenario"
	"github.com/proxyline/proxyline/internal/proctab"
)

// faultOutcome is what happened to one fault of the scenario.
type faultOutcome struct {
	name     string
	fired    int // firings that signalled at least one process
	want     int
	required bool
	problems []error
}

func faultName(i int, f scenario.Fault) string {
	if f.Name != "" {
		return f.Name
	}
	return fmt.Sprintf("fault-%d", i+1)
}

// runFault fires fault f Repeat times, each after its trigger, restarting the component when
// asked. base is when the workload started.
func (r *runner) runFault(ctx context.Context, i int, f scenario.Fault, base time.Time) faultOutcome {
	name := faultName(i, f)
	out := faultOutcome{name: name, want: max(f.Repeat, 1), required: f.Required == nil || *f.Required}
	if t := f.When.Timeout.D(); t > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t)
		defer cancel()
	}
	fs := firingState{name: name, of: out.want, base: base, seen: map[observe.Key]bool{}}
	fs.sig, _ = scenario.ParseSignal(f.Signal) // validated
	for k := 1; k <= out.want; k++ {
		fs.k = k
		fired, err := r.fireOnce(ctx, f, &fs)
		if fired {
			out.fired++
		}
		if err != nil {
			out.problems = append(out.problems, err)
			return out
		}
	}
	return out
}

// firingState is what the firings of one fault share.
type firingState struct {
	name string
	sig  syscall.Signal
	k    int // the firing, 1-based
	of   int
	// base is when the last firing (or restart) ended, or the workload started: what "after"
	// and "window" triggers count from.
	base time.Time
	seen map[observe.Key]bool // processes already used by a process trigger
	// missed counts process triggers whose process ended before the fault could fire.
	missed int
}

// missedText is what a fault that did not fire says of the trigger processes it missed.
func (fs *firingState) missedText() string {
	if fs.missed == 0 {
		return ""
	}
	return fmt.Sprintf(" (%d matching process(es) ended before the fault could fire: the machine was too slow to catch them)", fs.missed)
}

// fireOnce waits for the trigger, resolves the targets, signals them, records the tree and
// restarts the component when asked. It says whether the fault fired (signalled a process).
func (r *runner) fireOnce(ctx context.Context, f scenario.Fault, fs *firingState) (bool, error) {
	k := fs.k
	trig, targets, snap, err := r.armed(ctx, f, fs)
	if err != nil {
		return false, err
	}
	comp := r.live.comps[f.Target.Component]
	var main *proc
	if comp != nil {
		main = comp.current()
	}
	// The tree's instant is taken before the signal: after it, a delayed goroutine could see the
	// victim's death and its children's re-parenting as older than the fault.
	firedAt := time.Now()
	signalled := r.fire(fs.name, fs.sig, targets)
	if len(signalled) == 0 {
		return false, fmt.Errorf("firing %d: %w", k, errNoneSignalled)
	}
	pids := make([]int, len(signalled))
	for i, t := range signalled {
		pids[i] = t.PID
	}
	r.recordTree(snap, firedAt, fs.name, k, fs.of, fs.sig, signalled)
	detail := fmt.Sprintf("%s firing %d/%d", scenario.SignalName(fs.sig), k, fs.of)
	if trig.why != "" {
		detail += " on " + trig.why
	}
	r.event("fault", fs.name, detail, pids...)
	fs.base = time.Now()
	if f.Restart && comp != nil {
		if err := r.restart(ctx, comp, main, fs.name); err != nil {
			return true, fmt.Errorf("restart after firing %d: %w", k, err)
		}
		m := r.restartMark()
		r.live.obs.Mark(m)
		r.event("mark", m, "after restart of "+comp.spec.Name)
		fs.base = time.Now()
	}
	return true, nil
}

// armed waits for the fault's trigger and resolves its targets and the tree before it. A process
// trigger whose process has already ended by then (a machine too busy to catch it in time: the
// work it stood for is over) is a missed moment, not a firing: signalling then would test
// nothing of what the scenario means (a worker killed after its checker finished leaves no
// orphan, and a known-bad system would PASS). The miss is recorded and the next matching
// process is waited for.
func (r *runner) armed(ctx context.Context, f scenario.Fault, fs *firingState) (triggered, []key, []observe.Process, error) {
	k := fs.k
	for {
		trig, err := r.trigger(ctx, f, fs.base, fs.seen)
		if err != nil {
			r.event("fault", fs.name, fmt.Sprintf("firing %d did not happen: %v", k, err))
			return trig, nil, nil, fmt.Errorf("firing %d: trigger: %w%s", k, err, fs.missedText())
		}
		targets, err := r.targets(f.Target, trig)
		if err != nil {
			r.event("fault", fs.name, fmt.Sprintf("firing %d: %v", k, err))
			return trig, nil, nil, fmt.Errorf("firing %d: %w", k, err)
		}
		snap := r.treeSnapshot() // the process tree before the fault, for the report
		if trig.proc != nil && processEnded(trig.proc.PID, trig.proc.StartTime) {
			fs.missed++
			r.event("fault", fs.name, fmt.Sprintf("firing %d: its trigger, process %d, ended before the fault could fire; waiting for the next one",
				k, trig.proc.PID), trig.proc.PID)
			continue
		}
		return trig, targets, snap, nil
	}
}

// processEnded says whether the process pid that started at startTime has ended: gone, its pid
// reused, or a zombie (exited, not yet reaped).
func processEnded(pid int, startTime uint64) bool {
	st, err := proctab.Stat(pid)
	return err != nil || st.StartTime != startTime || st.State == 'Z' || st.State == 'X'
}

// restartMark names the phase mark after a restart: "cycle-N" (N counts restarts over all
// faults), or "restart-N" when the workload has its own cycles, whose marks the trend checks
// then use.
func (r *runner) restartMark() string {
	n := r.live.nextRestart()
	if r.sc.Workload.Cycles > 1 {
		return fmt.Sprintf("restart-%d", n)
	}
	return fmt.Sprintf("cycle-%d", n)
}

// restart stops the component's running instance like at the scenario end (the fault's own
// signal counts as the stop signal when it is the same, and is not sent twice), then starts it
// again and waits for readiness.
func (r *runner) restart(ctx context.Context, c *component, old *proc, fault string) error {
	if old != nil {
		r.stopOne(c, old, "restart after "+fault)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	r.event("restart", c.spec.Name, "after "+fault)
	return r.startComponent(ctx, c)
}

// triggered says what fired a trigger: for a process trigger, the process.
type triggered struct {
	why  string
	proc *observe.Process
}

// trigger waits for the fault's trigger.
func (r *runner) trigger(ctx context.Context, f scenario.Fault, base time.Time, seen map[observe.Key]bool) (triggered, error) {
	w := f.When
	switch {
	case w.After > 0:
		return waitUntil(ctx, base.Add(w.After.D()), "after "+w.After.D().String())
	case w.Window != nil:
		from, to := w.Window.From.D(), w.Window.To.D()
		d := from + time.Duration(r.live.int64N(int64(to-from)+1))
		return waitUntil(ctx, base.Add(d), fmt.Sprintf("seeded moment %v in [%v, %v]", d.Round(time.Millisecond), from, to))
	case w.Log != nil:
		return r.waitLogTrigger(ctx, w.Log)
	case w.Process != "":
		return r.waitProcessTrigger(ctx, f, seen)
	}
	return triggered{why: "start of the workload"}, nil
}

// waitUntil waits until at, or until ctx ends.
func waitUntil(ctx context.Context, at time.Time, why string) (triggered, error) {
	t := time.NewTimer(time.Until(at))
	defer t.Stop()
	select {
	case <-t.C:
		return triggered{why: why}, nil
	case <-ctx.Done():
		return triggered{}, ctx.Err()
	}
}

// waitLogTrigger waits for the next output line of the component that matches.
func (r *runner) waitLogTrigger(ctx context.Context, lt *scenario.LogTrigger) (triggered, error) {
	c := r.live.comps[lt.Component]
	ch, stop := c.hub.wait(regexp.MustCompile(lt.Regex), c.hub.count())
	defer stop()
	select {
	case line := <-ch:
		return triggered{why: fmt.Sprintf("log line %q", clip(line))}, nil
	case <-ctx.Done():
		return triggered{}, fmt.Errorf("no line of %s matched %q: %w", lt.Component, lt.Regex, ctx.Err())
	}
}

// waitProcessTrigger polls the target component's processes for a new one whose settled command
// line matches; it gives up when the component ended and will not be restarted.
func (r *runner) waitProcessTrigger(ctx context.Context, f scenario.Fault, seen map[observe.Key]bool) (triggered, error) {
	expr := f.When.Process
	re := regexp.MustCompile(expr)
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		if t, ok := r.matchNewProcess(f.Target.Component, re, seen); ok {
			return t, nil
		}
		if c := r.live.comps[f.Target.Component]; c != nil && !f.Restart {
			if p := c.current(); p != nil && p.exited() {
				st, _, _ := p.status()
				return triggered{}, fmt.Errorf("no process matched %q before %s ended (%s)", expr, c.spec.Name, st)
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return triggered{}, fmt.Errorf("no process matched %q: %w", expr, ctx.Err())
		}
	}
}

// matchNewProcess looks once for a live candidate not yet seen whose command line matches re,
// and marks it seen.
func (r *runner) matchNewProcess(component string, re *regexp.Regexp, seen map[observe.Key]bool) (triggered, bool) {
	for _, p := range r.candidates(component) {
		if seen[p.Key] || p.State == 'Z' {
			continue
		}
		// Read the command line now: the observer re-reads it at 1 Hz only, and a
		// process first seen in its fork→exec window shows its parent's argv.
		args, ok := settledCmdline(p)
		if !ok {
			continue // not yet settled: looked at again on the next tick
		}
		if re.MatchString(join(args)) {
			seen[p.Key] = true
			p.Cmdline = args
			return triggered{why: fmt.Sprintf("process %d %q", p.PID, clip(join(args))), proc: &p}, true
		}
	}
	return triggered{}, false
}

// candidates returns the attributed, alive processes that descend from the component's current
// main process (or all attributed processes when component is "").
func (r *runner) candidates(component string) []observe.Process {
	all := r.live.obs.Alive()
	if component == "" {
		return all
	}
	c := r.live.comps[component]
	if c == nil {
		return nil
	}
	main := c.current()
	if main == nil {
		return nil
	}
	var out []observe.Process
	for _, p := range all {
		if p.PID == main.pid || p.PPID == main.pid || slices.Contains(p.PPIDChain, main.pid) || p.PGID == main.pid {
			out = append(out, p)
		}
	}
	return out
}

type key = observe.Key

// fire sends sig to every target and records what it sent: a target that is a process the
// runner started (a component's main process, whatever the target form selected it, or a
// workload step) is signalled through its own handle and marked as hit by this fault, so its
// exit is judged as the fault's doing (a SIGKILL: not judged at all); a target below a
// component's main process is recorded on that instance (its shell may exit 128+signal). It
// returns the targets signalled.
func (r *runner) fire(fault string, sig syscall.Signal, targets []key) []key {
	var signalled []key
	byKey := map[key]observe.Process{}
	for _, p := range r.live.obs.Alive() {
		byKey[p.Key] = p
	}
	// A SIGKILL is waited for (briefly): the fault is done when its kills landed, so the run's
	// end (and the stop phase) comes after the deaths it caused.
	var wait time.Duration
	if sig == syscall.SIGKILL {
		wait = killLanded
	}
	for _, t := range targets {
		var above []*proc // instances whose tree holds the target, found before it dies
		if p, ok := byKey[t]; ok {
			above = r.instancesAbove(p)
		}
		var err error
		var alive time.Time // the target was alive then, right before the signal
		if own := r.live.procOf(t); own != nil {
			if !own.exited() {
				alive = aliveBefore(own.pid) // unreaped: the pid is still this child's
			}
			err = own.signal(sig, false, true) // through Go's own pidfd of its child
			if err == nil && wait > 0 {
				select {
				case <-own.done:
				case <-time.After(wait):
				}
			}
		} else {
			alive, err = signalKeyAlive(t.PID, t.StartTime, sig, wait)
		}
		if err != nil {
			r.event("error", fault, fmt.Sprintf("signal %d: %v", t.PID, err))
			continue
		}
		r.live.sent(detect.Signal{At: time.Now(), AliveAt: alive, Key: t, Signal: sig, By: "fault " + fault})
		for _, m := range above {
			m.mu.Lock()
			m.below = append(m.below, belowKill{pid: t.PID, sig: sig, fault: fault})
			m.mu.Unlock()
		}
		signalled = append(signalled, t)
	}
	return signalled
}

// errNoneSignalled is a firing whose targets could none be signalled (all gone, or refused).
var errNoneSignalled = errors.New("no target could be signalled")

// killLanded bounds the wait for a fault's SIGKILL to take effect (a process in D state, or a
// starved machine, may take longer: the fault goes on regardless).
const killLanded = 2 * time.Second

// instancesAbove returns the running component instances whose tree holds t (t descends from
// the instance's main process, or is in its process group).
func (r *runner) instancesAbove(t observe.Process) []*proc {
	var out []*proc
	for _, c := range r.live.comps {
		m := c.current()
		if m == nil || m.pid == t.PID || m.exited() {
			continue
		}
		if t.PPID == m.pid || t.PGID == m.pid || slices.Contains(t.PPIDChain, m.pid) {
			out = append(out, m)
		}
	}
	return out
}

// targets resolves a fault target to process identities.
func (r *runner) targets(t scenario.Target, trig triggered) ([]key, error) {
	var main *proc
	if c := r.live.comps[t.Component]; c != nil {
		main = c.current()
		if main == nil || main.exited() {
			return nil, fmt.Errorf("component %s is not running", t.Component)
		}
	}
	switch {
	case t.Match != "":
		re := regexp.MustCompile(t.Match)
		var out []key
		for _, p := range r.candidates(t.Component) {
			if p.State == 'Z' || (main != nil && p.PID == main.pid) {
				continue
			}
			args, ok := settledCmdline(p)
			for wait := time.Now().Add(2 * settleAge); !ok && time.Now().Before(wait); args, ok = settledCmdline(p) {
				time.Sleep(settleAge / 4) // bounded: until the process is settleAge old
			}
			if ok && re.MatchString(join(args)) {
				out = append(out, p.Key)
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("%w: match %q", errNoTarget, t.Match)
		}
		return out, nil
	case t.Tree:
		out := []key{main.key()}
		for _, p := range r.candidates(t.Component) {
			if p.PID != main.pid && p.State != 'Z' {
				out = append(out, p.Key)
			}
		}
		return out, nil
	case t.Random:
		var ds []key
		for _, p := range r.candidates(t.Component) {
			if p.PID != main.pid && p.State != 'Z' {
				ds = append(ds, p.Key)
			}
		}
		if len(ds) == 0 {
			return nil, fmt.Errorf("%w: %s has no descendant to pick", errNoTarget, t.Component)
		}
		slices.SortFunc(ds, func(a, b key) int { return a.PID - b.PID })
		pick := ds[r.live.intN(len(ds))]
		return []key{pick}, nil
	}
	return []key{main.key()}, nil
}

func clip(s string) string {
	if len(s) > 100 {
		return s[:100] + "…"
	}
	return s
}

// settleAge is how long a process whose command line is its parent's must have been seen before
// that command line is believed.
const settleAge = 150 * time.Millisecond

// settledCmdline reads p's command line, reporting ok only when it can be matched against: a
// process that shows exactly its parent's command line may be in its fork→exec window (HYGIENE
// trap 15: a child of `sh -c 'sleep 1 & sleep 2'` shows the whole sh command until it execs),
// so that command line is believed only once the process has been seen for settleAge (a child
// that never execs, such as a prefork worker, then matches on it).
func settledCmdline(p observe.Process) ([]string, bool) {
	args, err := proctab.Cmdline(p.PID)
	if err != nil || len(args) == 0 {
		return nil, false
	}
	if time.Since(p.FirstSeen) >= settleAge {
		return args, true
	}
	parent, err := proctab.Cmdline(p.PPID)
	if err == nil && slices.Equal(args, parent) {
		return nil, false
	}
	return args, true
}
