package run

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"time"

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
	problems []string
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
	sig, _ := scenario.ParseSignal(f.Signal) // validated
	if t := f.When.Timeout.D(); t > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t)
		defer cancel()
	}
	seen := map[observe.Key]bool{} // processes already used by a process trigger
	for k := 1; k <= out.want; k++ {
		trig, err := r.trigger(ctx, f, base, seen)
		if err != nil {
			out.problems = append(out.problems, fmt.Sprintf("firing %d: trigger: %v", k, err))
			r.event("fault", name, fmt.Sprintf("firing %d did not happen: %v", k, err))
			return out
		}
		targets, err := r.targets(f.Target, trig)
		if err != nil {
			out.problems = append(out.problems, fmt.Sprintf("firing %d: %v", k, err))
			r.event("fault", name, fmt.Sprintf("firing %d: %v", k, err))
			return out
		}
		var pids []int
		comp := r.comps[f.Target.Component]
		var main *proc
		if comp != nil {
			main = comp.current()
		}
		for _, t := range targets {
			var err error
			if main != nil && t.PID == main.pid && t.StartTime == main.startTime {
				err = main.signal(sig, false, true) // through Go's own pidfd of its child
			} else {
				err = signalKey(t.PID, t.StartTime, sig)
			}
			if err != nil {
				r.event("error", name, fmt.Sprintf("signal %d: %v", t.PID, err))
				continue
			}
			pids = append(pids, t.PID)
		}
		if len(pids) == 0 {
			out.problems = append(out.problems, fmt.Sprintf("firing %d: no target could be signalled", k))
			return out
		}
		out.fired++
		detail := fmt.Sprintf("%s firing %d/%d", scenario.SignalName(sig), k, out.want)
		if trig.why != "" {
			detail += " on " + trig.why
		}
		r.event("fault", name, detail, pids...)
		base = time.Now()
		if f.Restart && comp != nil {
			if err := r.restart(ctx, comp, main, name); err != nil {
				out.problems = append(out.problems, fmt.Sprintf("restart after firing %d: %v", k, err))
				return out
			}
			m := r.restartMark()
			r.obs.Mark(m)
			r.event("mark", m, "after restart of "+comp.spec.Name)
			base = time.Now()
		}
	}
	return out
}

// restartMark names the phase mark after a restart: "cycle-N" (N counts restarts over all
// faults), or "restart-N" when the workload has its own cycles, whose marks the trend checks
// then use.
func (r *runner) restartMark() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.restarts++
	if r.sc.Workload.Cycles > 1 {
		return fmt.Sprintf("restart-%d", r.restarts)
	}
	return fmt.Sprintf("cycle-%d", r.restarts)
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
	wait := func(at time.Time, why string) (triggered, error) {
		t := time.NewTimer(time.Until(at))
		defer t.Stop()
		select {
		case <-t.C:
			return triggered{why: why}, nil
		case <-ctx.Done():
			return triggered{}, ctx.Err()
		}
	}
	switch {
	case w.After > 0:
		return wait(base.Add(w.After.D()), "after "+w.After.D().String())
	case w.Window != nil:
		from, to := w.Window.From.D(), w.Window.To.D()
		r.mu.Lock()
		d := from + time.Duration(r.rng.Int64N(int64(to-from)+1))
		r.mu.Unlock()
		return wait(base.Add(d), fmt.Sprintf("seeded moment %v in [%v, %v]", d.Round(time.Millisecond), from, to))
	case w.Log != nil:
		c := r.comps[w.Log.Component]
		ch, stop := c.hub.wait(regexp.MustCompile(w.Log.Regex), c.hub.count())
		defer stop()
		select {
		case line := <-ch:
			return triggered{why: fmt.Sprintf("log line %q", clip(line))}, nil
		case <-ctx.Done():
			return triggered{}, fmt.Errorf("no line of %s matched %q: %w", w.Log.Component, w.Log.Regex, ctx.Err())
		}
	case w.Process != "":
		re := regexp.MustCompile(w.Process)
		tick := time.NewTicker(pollEvery)
		defer tick.Stop()
		for {
			for _, p := range r.candidates(f.Target.Component) {
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
					return triggered{why: fmt.Sprintf("process %d %q", p.PID, clip(join(args))), proc: &p}, nil
				}
			}
			if c := r.comps[f.Target.Component]; c != nil && !f.Restart {
				if p := c.current(); p != nil && p.exited() {
					st, _, _ := p.status()
					return triggered{}, fmt.Errorf("no process matched %q before %s ended (%s)", w.Process, c.spec.Name, st)
				}
			}
			select {
			case <-tick.C:
			case <-ctx.Done():
				return triggered{}, fmt.Errorf("no process matched %q: %w", w.Process, ctx.Err())
			}
		}
	}
	return triggered{why: "start of the workload"}, nil
}

// candidates returns the attributed, alive processes that descend from the component's current
// main process (or all attributed processes when component is "").
func (r *runner) candidates(component string) []observe.Process {
	all := r.obs.Alive()
	if component == "" {
		return all
	}
	c := r.comps[component]
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

type key struct {
	PID       int
	StartTime uint64
}

// targets resolves a fault target to process identities.
func (r *runner) targets(t scenario.Target, trig triggered) ([]key, error) {
	var main *proc
	if c := r.comps[t.Component]; c != nil {
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
				out = append(out, key{p.PID, p.StartTime})
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("%w: match %q", errNoTarget, t.Match)
		}
		return out, nil
	case t.Tree:
		out := []key{{main.pid, main.startTime}}
		for _, p := range r.candidates(t.Component) {
			if p.PID != main.pid && p.State != 'Z' {
				out = append(out, key{p.PID, p.StartTime})
			}
		}
		return out, nil
	case t.Random:
		var ds []key
		for _, p := range r.candidates(t.Component) {
			if p.PID != main.pid && p.State != 'Z' {
				ds = append(ds, key{p.PID, p.StartTime})
			}
		}
		if len(ds) == 0 {
			return nil, fmt.Errorf("%w: %s has no descendant to pick", errNoTarget, t.Component)
		}
		slices.SortFunc(ds, func(a, b key) int { return a.PID - b.PID })
		r.mu.Lock()
		pick := ds[r.rng.IntN(len(ds))]
		r.mu.Unlock()
		return []key{pick}, nil
	}
	return []key{{main.pid, main.startTime}}, nil
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
