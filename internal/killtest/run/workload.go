package run

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/proxyline/proxyline/internal/killtest/probe"
	"github.com/proxyline/proxyline/internal/killtest/scenario"
)

// runWorkload runs the steps in order, Cycles times, marking "cycle-N" after each cycle when
// there is more than one. Background steps are waited for at the end of the workload (up to
// their timeout, then killed with their group).
func (r *runner) runWorkload(ctx context.Context) {
	cycles := max(r.sc.Workload.Cycles, 1)
	type bg struct {
		p    *proc
		step scenario.Step
		name string
		end  time.Time
		hub  *lineHub
	}
	var background []bg
	for cy := 1; cy <= cycles; cy++ {
		for i, st := range r.sc.Workload.Steps {
			name := st.Name
			if name == "" {
				name = fmt.Sprintf("step-%d", i+1)
			}
			if cycles > 1 {
				name = fmt.Sprintf("%s#%d", name, cy)
			}
			if ctx.Err() != nil {
				r.stepErr(name, fmt.Errorf("not run: %w", ctx.Err()))
				return
			}
			hub := &lineHub{} // the step's output, for evidence when it fails
			p, err := r.startProc(procSpec{name: name, argv: st.Command, sh: st.Sh, env: st.Env, dir: st.Dir,
				hub: hub, logPath: filepath.Join(r.tmp, "logs", "workload.log")})
			if err != nil {
				r.stepErr(name, err)
				continue
			}
			timeout := st.Timeout.Or(scenario.DefaultStepTimeout)
			r.event("step", name, "started", p.pid)
			if st.Background {
				background = append(background, bg{p, st, name, time.Now().Add(timeout), hub})
				continue
			}
			r.finishStep(ctx, p, st, name, time.Now().Add(timeout), hub)
		}
		if cycles > 1 {
			m := fmt.Sprintf("cycle-%d", cy)
			r.live.obs.Mark(m)
			r.event("mark", m, "after workload cycle")
		}
	}
	for _, b := range background {
		r.finishStep(ctx, b.p, b.step, b.name, b.end, b.hub)
	}
}

// errStepTimeout is a workload step that overran its timeout.
var errStepTimeout = errors.New("timed out and was killed")

// finishStep waits for a step until end, kills its group if it overruns, and checks its exit.
func (r *runner) finishStep(ctx context.Context, p *proc, st scenario.Step, name string, end time.Time, hub *lineHub) {
	t := time.NewTimer(time.Until(end))
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		p.killGroup()
		<-p.done
		r.stepErr(name, errStepTimeout)
		return
	case <-ctx.Done():
		p.killGroup()
		<-p.done
		r.stepErr(name, fmt.Errorf("canceled: %w", ctx.Err()))
		return
	}
	got, _, _ := p.status()
	want, _ := scenario.ParseExits(st.Exit) // validated
	p.mu.Lock()
	faultKill := p.faultKill
	p.mu.Unlock()
	if faultKill {
		r.event("step", name, got.String()+": SIGKILLed by a fault, not judged", p.pid)
		return
	}
	if !slices.Contains(want, got) {
		// The last lines may still be in the pipe; wait briefly, not for holders that outlive it.
		t := time.NewTimer(200 * time.Millisecond)
		select {
		case <-p.pumped:
		case <-t.C:
		}
		t.Stop()
		err := fmt.Errorf("%s, want %v", got, want)
		if tail := hub.tail(5); len(tail) > 0 {
			err = fmt.Errorf("%w; last output: %s", err, strings.Join(tail, " ⏎ "))
		}
		r.stepErr(name, err)
		return
	}
	r.event("step", name, got.String(), p.pid)
}

// stepErr records a workload step that failed.
func (r *runner) stepErr(name string, err error) {
	r.res.stepFailed(fmt.Errorf("%s: %w", name, err))
	r.event("error", name, err.Error())
}

// probeEnv is the environment of command probes: the harness's with --bin, without the cookie
// (a probe is the harness's, not the system's).
func (r *runner) probeEnv() probe.Env {
	env := make([]string, 0, len(r.environ))
	for _, kv := range r.environ {
		if kv != r.cookie {
			env = append(env, kv)
		}
	}
	return probe.Env{Environ: env, Dir: r.tmp}
}

// runWaits polls each wait condition until it holds or its timeout passes.
func (r *runner) runWaits(ctx context.Context) {
	for i, c := range r.sc.Wait {
		timeout := c.Timeout.Or(scenario.DefaultWaitTimeout)
		wctx, cancel := context.WithTimeout(ctx, timeout)
		last, measured, err := r.pollCondition(wctx, c)
		cancel()
		if err != nil {
			err := fmt.Errorf("wait[%d] %s: not met within %v (last value %s)", i, c, timeout, last)
			if !measured {
				// The probe never gave a value: the harness could not measure, so it cannot
				// say the system failed the condition.
				err = fmt.Errorf("wait[%d] %s: the probe gave no value within %v, the condition could not be judged (last: %s)", i, c, timeout, last)
			}
			r.res.waitFailed(err, !measured)
			r.event("wait", c.Probe, err.Error())
			continue
		}
		r.event("wait", c.Probe, fmt.Sprintf("%s holds (%s)", c, last))
	}
}

// pollCondition measures the probe until the condition holds or ctx ends, and says whether the
// probe ever gave a value. Probing is not free (a query, a process), so it polls at most every
// 100ms.
func (r *runner) pollCondition(ctx context.Context, c scenario.Condition) (last string, measured bool, err error) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	last = "none"
	for {
		v, err := probe.Value(ctx, r.sc.Probes[c.Probe], r.probeEnv())
		if err != nil {
			last = "error: " + err.Error()
		} else {
			measured = true
			last = fmt.Sprintf("%g", v)
			if c.Holds(v) {
				return last, true, nil
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return last, measured, ctx.Err()
		}
	}
}
