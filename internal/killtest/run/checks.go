package run

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"syscall"
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
	sc := r.sc
	ex := sc.Expect
	on := func(t *scenario.Toggle) bool { return t == nil || t.Enabled }
	var out []report.Check
	if ex.Orphans == nil || ex.Orphans.Enabled {
		grace := scenario.DefaultOrphanGrace
		if ex.Orphans != nil {
			grace = ex.Orphans.Grace.Or(grace)
		}
		out = append(out, fromDetect(detect.Orphans(ctx, r.obs, detect.OrphanOptions{Grace: grace})))
	}
	if on(ex.Zombies) {
		out = append(out, fromDetect(detect.Zombies(r.obs, detect.ZombieOptions{})))
	}
	if on(ex.Stopped) {
		out = append(out, fromDetect(detect.Stopped(ctx, r.obs, detect.StoppedOptions{KilledAt: r.lastKill()})))
	}
	if ex.Ports == nil || ex.Ports.Enabled {
		var ports []int
		if ex.Ports != nil {
			ports = ex.Ports.Ports
		}
		out = append(out, fromDetect(detect.Ports(r.obs, detect.PortOptions{Ports: ports})))
	}
	if on(ex.Exit) && len(r.comps) > 0 {
		out = append(out, r.exitCheck())
	}
	if r.aborted {
		return out
	}
	if f := ex.FDGrowth; (f == nil && sc.Cycles()) || (f != nil && f.Enabled) {
		opts := detect.FDOptions{}
		if f != nil {
			opts = detect.FDOptions{Warmup: f.Warmup, MinCycles: f.MinCycles, MinSlope: f.Slope, MinDelta: f.MinGrowth}
		}
		out = append(out, fromDetect(detect.FDGrowth(r.obs, opts)))
	}
	if m := ex.MemoryGrowth; (m == nil && sc.Cycles()) || (m != nil && m.Enabled) {
		opts := detect.MemoryOptions{}
		if m != nil {
			opts = detect.MemoryOptions{Warmup: m.Warmup, MinCycles: m.MinCycles, SlopeKiB: m.SlopeKiB,
				MinGrowthFraction: m.MinGrowthPct / 100, MinGrowthBytes: int64(m.MinGrowthMiB * (1 << 20))}
		}
		out = append(out, fromDetect(detect.MemoryGrowth(r.obs, opts)))
	}
	if ic := ex.InheritedFDs; ic != nil && ic.Enabled {
		out = append(out, fromDetect(detect.InheritedFDs(r.obs, detect.InheritOptions{Commands: ic.Commands})))
	}
	if len(sc.Workload.Steps) > 0 {
		out = append(out, listCheck("workload", r.stepErrs, "every workload step exited as expected", "workload step(s) failed"))
	}
	if len(sc.Wait) > 0 {
		out = append(out, listCheck("wait", r.waitErrs, "every wait condition held in time", "wait condition(s) not met"))
	}
	if len(sc.Faults) > 0 {
		out = append(out, r.faultCheck())
	}
	out = append(out, r.probeChecks(ctx, "after")...)
	if ex.History != nil {
		out = append(out, r.historyCheck(ctx, ex.History))
	}
	return out
}

func listCheck(name string, problems []string, ok, bad string) report.Check {
	if len(problems) == 0 {
		return report.Check{Name: name, Verdict: report.Pass, Summary: ok}
	}
	return report.Check{Name: name, Verdict: report.Fail, Summary: fmt.Sprintf("%d %s", len(problems), bad), Details: problems}
}

// faultCheck is unknown when a required fault never fired as often as asked: the scenario did
// not test what it meant to.
func (r *runner) faultCheck() report.Check {
	c := report.Check{Name: "faults", Verdict: report.Pass}
	fired, want := 0, 0
	sort.Slice(r.faults, func(i, j int) bool { return r.faults[i].name < r.faults[j].name })
	for _, f := range r.faults {
		fired += f.fired
		want += f.want
		if f.fired < f.want {
			line := fmt.Sprintf("%s fired %d of %d times: %s", f.name, f.fired, f.want, strings.Join(f.problems, "; "))
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

// lastKill is when the runner last sent SIGKILL (stop escalation, restart or a fault), for the
// stopped detector's D-state grace.
func (r *runner) lastKill() time.Time {
	var t time.Time
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.procs {
		p.mu.Lock()
		if (p.signaled == syscall.SIGKILL || p.late > 0) && p.signaledAt.After(t) {
			t = p.signaledAt
		}
		p.mu.Unlock()
	}
	return t
}

// exitCheck judges how every component instance ended: stopped by the runner (scenario end,
// restart) or by a non-KILL fault signal, it must exit within the stop deadline with an accepted
// status; ended on its own, with an accepted status. Instances killed by a SIGKILL fault are not
// judged (nothing graceful is possible).
func (r *runner) exitCheck() report.Check {
	var exits []detect.Exit
	var skipped []string
	for _, spec := range r.sc.Components {
		c := r.comps[spec.Name]
		if c == nil {
			continue
		}
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
		c.mu.Lock()
		insts := append([]*proc(nil), c.instances...)
		c.mu.Unlock()
		for i, p := range insts {
			st, at, ok := p.status()
			if !ok {
				continue
			}
			p.mu.Lock()
			sig, sigAt, faultKill, late := p.signaled, p.signaledAt, p.faultKill, p.late
			p.mu.Unlock()
			name := fmt.Sprintf("%s#%d", spec.Name, i+1)
			if faultKill {
				skipped = append(skipped, fmt.Sprintf("%s (pid %d) was SIGKILLed by a fault: not judged", name, p.pid))
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
	}
	if len(exits) == 0 {
		return report.Check{Name: "graceful-exit", Verdict: report.Pass, Summary: "no component exit to judge (all were killed by faults)", Details: skipped}
	}
	c := fromDetect(detect.GracefulExit(exits))
	c.Details = append(c.Details, skipped...)
	return c
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
