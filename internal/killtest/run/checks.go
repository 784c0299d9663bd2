package run

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/proxyline/proxyline/internal/killtest/detect"
	"github.com/proxyline/proxyline/internal/killtest/history"
	"github.com/proxyline/proxyline/internal/killtest/probe"
	"github.com/proxyline/proxyline/internal/killtest/report"
	"github.com/proxyline/proxyline/internal/killtest/scenario"
)

func fromDetect(r detect.Result) report.Check {
	return report.Check{Name: r.Check, Verdict: r.Verdict, Summary: r.Summary, Evidence: r.Evidence, Series: r.Series}
}

// judge runs every enabled check after the components were stopped. Order matters: orphans
// first (it polls up to its grace while leftovers may still exit), then the others.
func (r *runner) judge(ctx context.Context) []report.Check {
	out := r.processChecks(ctx)
	if r.res.aborted {
		return out
	}
	out = append(out, r.trendChecks()...)
	out = append(out, r.runChecks()...)
	out = append(out, r.probeChecks(ctx, "after")...)
	if h := r.sc.Expect.History; h != nil {
		out = append(out, r.historyCheck(ctx, h))
	}
	return out
}

// enabled is a check toggle that is on unless the scenario turned it off.
func enabled(t *scenario.Toggle) bool { return t == nil || t.Enabled }

// processChecks are the checks of what the system's processes left behind: orphans, zombies,
// stopped processes, ports, exits and files. They are judged even when the workload never ran.
func (r *runner) processChecks(ctx context.Context) []report.Check {
	ex := r.sc.Expect
	obs := r.live.obs
	var out []report.Check
	if ex.Orphans == nil || ex.Orphans.Enabled {
		out = append(out, fromDetect(detect.Orphans(ctx, obs, r.orphanOptions())))
	}
	if enabled(ex.Zombies) {
		out = append(out, fromDetect(detect.Zombies(obs, detect.ZombieOptions{})))
	}
	if enabled(ex.Stopped) {
		out = append(out, fromDetect(detect.Stopped(ctx, obs, detect.StoppedOptions{KilledAt: r.live.lastKill()})))
	}
	if ex.Ports == nil || ex.Ports.Enabled {
		var ports []int
		if ex.Ports != nil {
			ports = ex.Ports.Ports
		}
		out = append(out, fromDetect(detect.Ports(obs, detect.PortOptions{Ports: ports})))
	}
	if enabled(ex.Exit) && len(r.live.comps) > 0 {
		out = append(out, r.exitCheck())
	}
	if c := r.filesCheck(); c != nil {
		out = append(out, *c) // after the orphans' grace: what exiting processes clean up is gone
	}
	return out
}

// trendChecks are the fd and memory growth checks and the inherited-fds check, on by default
// for scenarios with cycles.
func (r *runner) trendChecks() []report.Check {
	sc, obs := r.sc, r.live.obs
	ex := sc.Expect
	var out []report.Check
	if f := ex.FDGrowth; (f == nil && sc.Cycles()) || (f != nil && f.Enabled) {
		opts := detect.FDOptions{}
		if f != nil {
			opts = detect.FDOptions{Warmup: f.Warmup, MinCycles: f.MinCycles, MinSlope: f.Slope, MinDelta: f.MinGrowth}
		}
		out = append(out, fromDetect(detect.FDGrowth(obs, opts)))
	}
	if m := ex.MemoryGrowth; (m == nil && sc.Cycles()) || (m != nil && m.Enabled) {
		opts := detect.MemoryOptions{}
		if m != nil {
			opts = detect.MemoryOptions{Warmup: m.Warmup, MinCycles: m.MinCycles, SlopeKiB: m.SlopeKiB,
				MinGrowthFraction: m.MinGrowthPct / 100, MinGrowthBytes: int64(m.MinGrowthMiB * (1 << 20))}
		}
		out = append(out, fromDetect(detect.MemoryGrowth(obs, opts)))
	}
	if ic := ex.InheritedFDs; ic != nil && ic.Enabled {
		out = append(out, fromDetect(detect.InheritedFDs(obs, detect.InheritOptions{Commands: ic.Commands})))
	}
	return out
}

// runChecks judge what the run itself recorded: workload steps, wait conditions and faults.
func (r *runner) runChecks() []report.Check {
	var out []report.Check
	r.res.mu.Lock()
	stepErrs, waitErrs, blind := r.res.stepErrs, r.res.waitErrs, r.res.waitBlind
	r.res.mu.Unlock()
	if len(r.sc.Workload.Steps) > 0 {
		out = append(out, listCheck("workload", stepErrs, "every workload step exited as expected", "workload step(s) failed"))
	}
	if len(r.sc.Wait) > 0 {
		c := listCheck("wait", waitErrs, "every wait condition held in time", "wait condition(s) not met")
		if blind > 0 && blind == len(waitErrs) {
			// Every unmet condition is one the harness could not measure: not the system's
			// failure as far as anyone can tell.
			c.Verdict = report.Unknown
			c.Summary = fmt.Sprintf("%d wait condition(s) could not be judged: their probe never gave a value", blind)
		}
		out = append(out, c)
	}
	if len(r.sc.Faults) > 0 {
		out = append(out, r.faultCheck())
	}
	return out
}

// orphanOptions gives the orphan detector the grace, the allowed daemons and what the harness
// did: start-up windows, signals sent, component exits (for "what ended it").
func (r *runner) orphanOptions() detect.OrphanOptions {
	oc := r.sc.Expect.Orphans
	opts := detect.OrphanOptions{Grace: scenario.DefaultOrphanGrace, Origin: r.start}
	if oc != nil {
		opts.Grace = oc.Grace.Or(opts.Grace)
		for _, a := range oc.Allow {
			opts.Allow = append(opts.Allow, regexp.MustCompile(a)) // validated
		}
	}
	r.live.mu.Lock()
	opts.Startups = slices.Clone(r.live.startups)
	opts.Signals = slices.Clone(r.live.signals)
	r.live.mu.Unlock()
	for _, spec := range r.sc.Components {
		c := r.live.comps[spec.Name]
		if c == nil {
			continue
		}
		for _, p := range c.all() {
			if _, at, ok := p.status(); ok {
				p.mu.Lock()
				var stopAt time.Time
				if p.stopReason != "" {
					stopAt = p.signaledAt
				}
				p.mu.Unlock()
				opts.Exits = append(opts.Exits, detect.ComponentExit{Component: spec.Name, Key: p.key(), StopAt: stopAt, At: at, Why: p.endReason()})
			}
		}
	}
	return opts
}

// listCheck passes when there is no problem, and fails listing them otherwise.
func listCheck(name string, problems []error, ok, bad string) report.Check {
	if len(problems) == 0 {
		return report.Check{Name: name, Verdict: report.Pass, Summary: ok}
	}
	return report.Check{Name: name, Verdict: report.Fail, Summary: fmt.Sprintf("%d %s", len(problems), bad), Details: errorTexts(problems)}
}

// faultCheck is unknown when a required fault never fired as often as asked: the scenario did
// not test what it meant to.
func (r *runner) faultCheck() report.Check {
	c := report.Check{Name: "faults", Verdict: report.Pass}
	fired, want := 0, 0
	r.res.mu.Lock()
	faults := slices.Clone(r.res.faults)
	r.res.mu.Unlock()
	sort.Slice(faults, func(i, j int) bool { return faults[i].name < faults[j].name })
	for _, f := range faults {
		fired += f.fired
		want += f.want
		if f.fired < f.want {
			line := fmt.Sprintf("%s fired %d of %d times: %s", f.name, f.fired, f.want, errorText(f.problems, "; "))
			c.Details = append(c.Details, line)
			if f.required {
				c.Verdict = report.Unknown
			}
		}
	}
	c.Summary = fmt.Sprintf("%d of %d fault firings happened", fired, want)
	if c.Verdict == report.Unknown {
		c.Summary += ": the scenario did not inject what it meant to, so it cannot be judged"
	}
	return c
}

// exitCheck judges how every component instance ended: stopped by the runner (scenario end,
// restart) or by a non-KILL fault signal, it must exit within the stop deadline with an accepted
// status; ended on its own, with an accepted status. Kills by a fault are never the system's
// failure: an instance whose main process a fault SIGKILLed (whatever the target form selected
// it: component, tree, match, random) is not judged, nor one that ended on its own with 128+N
// (or of signal N) after a fault sent signal N to one of its descendants.
func (r *runner) exitCheck() report.Check {
	var exits []detect.Exit
	var skipped []string
	for _, spec := range r.sc.Components {
		e, s := componentExits(spec, r.live.comps[spec.Name])
		exits = append(exits, e...)
		skipped = append(skipped, s...)
	}
	if len(exits) == 0 {
		return report.Check{Name: "graceful-exit", Verdict: report.Pass, Summary: "no component exit to judge (all were killed by faults)", Details: skipped}
	}
	c := fromDetect(detect.GracefulExit(exits))
	c.Details = append(c.Details, skipped...)
	return c
}

// componentExits returns the exits of a component's instances to judge, and why the others are
// not judged.
func componentExits(spec scenario.Component, c *component) (exits []detect.Exit, skipped []string) {
	want, _ := scenario.ParseExits(spec.Stop.Exit)
	var codes []int
	for _, w := range want {
		if w.Signal != 0 {
			codes = append(codes, 128+int(w.Signal))
		} else {
			codes = append(codes, w.Code)
		}
	}
	deadline := spec.Stop.Deadline.Or(scenario.DefaultStopDeadline)
	for i, p := range c.all() {
		st, at, ok := p.status()
		if !ok {
			continue
		}
		p.mu.Lock()
		sig, sigAt, faultKill, late, below := p.signaled, p.signaledAt, p.faultKill, p.late, p.below
		p.mu.Unlock()
		name := fmt.Sprintf("%s#%d", spec.Name, i+1)
		if faultKill {
			skipped = append(skipped, fmt.Sprintf("%s (pid %d) was SIGKILLed by a fault: not judged", name, p.pid))
			continue
		}
		if why := causedBelow(st, late > 0, below); why != "" {
			skipped = append(skipped, fmt.Sprintf("%s (pid %d) %s: not judged", name, p.pid, why))
			continue
		}
		e := detect.Exit{Component: name, PID: p.pid, ExpectedCodes: codes, Escalated: late > 0}
		if st.Signal != 0 {
			e.Code = 128 + int(st.Signal)
			e.Signal = scenario.SignalName(st.Signal)
		} else {
			e.Code = st.Code
		}
		if !sigAt.IsZero() && sig != 0 {
			e.Elapsed = at.Sub(sigAt)
			e.Deadline = deadline
		}
		exits = append(exits, e)
	}
	return exits, skipped
}

// causedBelow says why an instance's exit was caused by a fault that hit a process below it
// ("" when it was not): it ended with the shell's status for death by signal N, 128+N, or by N
// itself, after a fault sent N to one of its descendants (a `sh -c` main process reporting its
// child's death; the stop may have been sent meanwhile). An instance the runner had to SIGKILL
// after its stop deadline is judged all the same.
func causedBelow(st scenario.ExitStatus, escalated bool, below []belowKill) string {
	if escalated {
		return ""
	}
	for _, b := range below {
		if st.Signal == b.sig || (st.Signal == 0 && st.Code == 128+int(b.sig)) {
			return fmt.Sprintf("ended with %s after fault %s sent %s to its descendant pid %d", st, b.fault, scenario.SignalName(b.sig), b.pid)
		}
	}
	return ""
}

// probeChecks evaluates the expect.probes conditions of one phase (before or after).
func (r *runner) probeChecks(ctx context.Context, phase string) []report.Check {
	var out []report.Check
	for i, c := range r.sc.Expect.Probes {
		when := c.When
		if when == "" {
			when = "after"
		}
		if when != phase {
			continue
		}
		name := fmt.Sprintf("probe %s (%s)", c.Probe, phase)
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		v, err := probe.Value(pctx, r.sc.Probes[c.Probe], r.probeEnv())
		cancel()
		switch {
		case err != nil:
			out = append(out, report.Check{Name: name, Verdict: report.Unknown, Summary: fmt.Sprintf("expect.probes[%d]: %v", i, err)})
		case c.Holds(v):
			out = append(out, report.Check{Name: name, Verdict: report.Pass, Summary: fmt.Sprintf("%s: value %g", c, v)})
		default:
			out = append(out, report.Check{Name: name, Verdict: report.Fail, Summary: fmt.Sprintf("%s: value %g", c, v)})
		}
		r.event("probe", c.Probe, fmt.Sprintf("%s: %g (err %v)", phase, v, err))
	}
	return out
}

// historyCheck is the Jepsen total-queue check.
func (r *runner) historyCheck(ctx context.Context, h *scenario.History) report.Check {
	const name = "history"
	sub, err := r.loadSource(ctx, h.Submitted)
	if err != nil {
		return report.Check{Name: name, Verdict: report.Unknown, Summary: "submitted ids: " + err.Error()}
	}
	res, err := r.loadSource(ctx, h.Results)
	if err != nil {
		return report.Check{Name: name, Verdict: report.Unknown, Summary: "results: " + err.Error()}
	}
	var sums map[string]string
	if h.Checksums != "" {
		f, err := os.Open(h.Checksums)
		if err != nil {
			return report.Check{Name: name, Verdict: report.Unknown, Summary: "checksums: " + err.Error()}
		}
		sums, err = history.ReadChecksums(f, h.Checksums)
		f.Close()
		if err != nil {
			return report.Check{Name: name, Verdict: report.Unknown, Summary: "checksums: " + err.Error()}
		}
	}
	rep := history.Analyze(history.IDs(sub), res, sums)
	c := report.Check{Name: name, Verdict: report.Pass, Summary: rep.Summary()}
	if rep.Submitted == 0 {
		c.Verdict = report.Unknown
		c.Summary = "no submitted ids: the workload did not submit anything to check"
		return c
	}
	fail := func(kind string, n, limit int, ids []string) {
		if n > limit {
			c.Verdict = report.Fail
		}
		if n > 0 {
			c.Details = append(c.Details, fmt.Sprintf("%s %d (allowed %d, %.1f%%): %s", kind, n, limit, 100*rep.Fraction(n), clipList(ids, 50)))
		}
	}
	fail("lost", len(rep.Lost), h.MaxLost, rep.Lost)
	var dups []string
	for _, d := range rep.Duplicated {
		dups = append(dups, fmt.Sprintf("%s×%d (%s)", d.ID, d.Count, strings.Join(d.Where, ", ")))
	}
	fail("duplicated", len(rep.Duplicated), h.MaxDuplicated, dups)
	fail("unexpected", len(rep.Unexpected), h.MaxUnexpected, rep.Unexpected)
	var bad []string
	for _, x := range rep.Corrupted {
		bad = append(bad, fmt.Sprintf("%s at %s: %s", x.ID, x.Where, x.Detail))
	}
	fail("corrupted", len(rep.Corrupted), h.MaxCorrupted, bad)
	if len(rep.DuplicateSubmissions) > 0 {
		c.Details = append(c.Details, "submitted more than once (not judged): "+clipList(rep.DuplicateSubmissions, 20))
	}
	return c
}

func clipList(ids []string, n int) string {
	if len(ids) > n {
		return strings.Join(ids[:n], ", ") + fmt.Sprintf(", … (%d more)", len(ids)-n)
	}
	return strings.Join(ids, ", ")
}

// loadSource reads ids (and outputs) from a history source.
func (r *runner) loadSource(ctx context.Context, s scenario.Source) ([]history.Record, error) {
	switch {
	case s.File != "":
		f, err := os.Open(s.File)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", s.File, err)
		}
		defer f.Close()
		return history.ReadIDs(f, s.File)
	case s.JSONL != "":
		f, err := os.Open(s.JSONL)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", s.JSONL, err)
		}
		defer f.Close()
		return history.ReadJSONL(f, s.JSONL, s.IDField, s.OutputField)
	case s.SQL != nil:
		rows, err := probe.SQLRows(ctx, s.SQL.Driver, s.SQL.DSN, s.SQL.Query)
		if err != nil {
			return nil, err
		}
		out := make([]history.Record, 0, len(rows))
		for i, row := range rows {
			if len(row) == 0 || row[0] == "" {
				return nil, fmt.Errorf("query %q row %d: empty id", s.SQL.Query, i+1)
			}
			rec := history.Record{ID: row[0], Where: fmt.Sprintf("sql row %d", i+1)}
			if len(row) > 1 {
				rec.Output, rec.HasOutput = row[1], true
			}
			out = append(out, rec)
		}
		return out, nil
	}
	return nil, fmt.Errorf("no source")
}
