package run

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/proxyline/proxyline/internal/killtest/human"
	"github.com/proxyline/proxyline/internal/killtest/report"
	"github.com/proxyline/proxyline/internal/killtest/scenario"
)

// runSetup runs the scenario's setup steps in order, before the observer and the components
// start. They get the run's environment without the cookie and run outside the run cgroup: the
// observer, started later, does not attribute them, so nothing they do is judged as the
// system's. Each step's process group is killed when the step ends (or times out), so no setup
// process lives on into the run. It returns the "setup" check and, when a step failed, the
// harness error: the run cannot be judged (UNKNOWN, exit 2).
func (r *runner) runSetup(ctx context.Context) (report.Check, error) {
	c := report.Check{Name: "setup", Verdict: report.Pass}
	start := time.Now()
	for i, st := range r.sc.Setup {
		name := st.Name
		if name == "" {
			name = fmt.Sprintf("setup-%d", i+1)
		}
		hub := &lineHub{}
		p, err := r.startProc(procSpec{name: name, argv: st.Command, sh: st.Sh, env: st.Env, dir: st.Dir,
			hub: hub, logPath: filepath.Join(r.tmp, "logs", "setup.log"), harness: true})
		if err != nil {
			return r.setupFailed(c, name, err, nil)
		}
		r.event("setup", name, "started", p.pid)
		if err := r.waitSetup(ctx, p, st); err != nil {
			return r.setupFailed(c, name, err, hub.tail(20))
		}
		r.event("setup", name, "done", p.pid)
	}
	c.Summary = fmt.Sprintf("%d setup step(s) done in %s", len(r.sc.Setup), human.Duration(time.Since(start)))
	return c, nil
}

// waitSetup waits for a setup step up to its timeout and checks its exit; nil when it succeeded.
// The step's process group is killed either way: setup must not leave processes running.
func (r *runner) waitSetup(ctx context.Context, p *proc, st scenario.Step) error {
	timeout := st.Timeout.Or(scenario.DefaultStepTimeout)
	t := time.NewTimer(timeout)
	defer t.Stop()
	var why error
	select {
	case <-p.done:
	case <-t.C:
		why = fmt.Errorf("did not finish within %s (killed)", human.Duration(timeout))
	case <-ctx.Done():
		why = fmt.Errorf("canceled: %w", ctx.Err())
	}
	p.killGroup()
	<-p.done
	pumped := time.NewTimer(time.Second) // the last lines, for the report; bounded
	select {
	case <-p.pumped:
	case <-pumped.C:
	}
	pumped.Stop()
	if why != nil {
		return why
	}
	got, _, _ := p.status()
	want, _ := scenario.ParseExits(st.Exit) // validated
	if !slices.Contains(want, got) {
		return fmt.Errorf("%s, want %v", got, want)
	}
	return nil
}

// setupFailed makes the setup check unknown, with the step's last output, and returns the
// harness error.
func (r *runner) setupFailed(c report.Check, step string, err error, tail []string) (report.Check, error) {
	// The output may still be in the pipe: the log file has it all, the report the last lines.
	c.Verdict = report.Unknown
	c.Summary = fmt.Sprintf("setup step %s: %v; the run was not started", step, err)
	if len(tail) > 0 {
		c.Details = append([]string{"last output of " + step + ":"}, tail...)
	}
	c.Details = append(c.Details, "full output: "+filepath.Join(r.tmp, "logs", "setup.log"))
	r.event("error", step, err.Error())
	return c, fmt.Errorf("setup step %s failed: %w", step, err)
}
