package run

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/proxyline/proxyline/internal/killtest/observe"
	"github.com/proxyline/proxyline/internal/killtest/report"
	"github.com/proxyline/proxyline/internal/killtest/scenario"
)

// CookieKey is the environment variable carrying the run id in every process the runner starts.
const CookieKey = "KILLTEST_RUN"

// Options configure runs. The zero value is usable.
type Options struct {
	// Bin is a directory prepended to PATH for components, steps and probes (--bin). Default none.
	Bin string
	// TestData is the value of ${TESTDATA}. Default "".
	TestData string
	// Log receives progress. Default: discarded.
	Log *slog.Logger
	// Reproduce builds the command that repeats a run with its seed. Default: a generic
	// "killtest run --seed N FILE".
	Reproduce func(sc *scenario.Scenario, seed int64) string
	// Interval is the observer's sampling period. Default 100ms.
	Interval time.Duration
	// CleanupDeadline bounds the teardown's wait for processes to vanish. Default 5s.
	CleanupDeadline time.Duration
	// NoCgroup disables the run cgroup even where cgroup v2 is writable.
	NoCgroup bool
	// SamplesDir, when set, receives samples-<scenario>-<run>.csv: the 1 Hz fd and RssAnon
	// samples of every attributed process. Default: none.
	SamplesDir string
}

func newID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Run runs one scenario (already parsed) once with seed and returns its judged result. It never
// returns an error: what went wrong in the harness is in HarnessError (verdict unknown) or
// CleanupError (killtest exits 2). run is the 1-based repetition number.
func Run(ctx context.Context, parsed *scenario.Scenario, run int, seed int64, opts Options) report.Scenario {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	res := report.Scenario{Name: parsed.Name, Description: parsed.Description, File: parsed.File, Run: run, Seed: seed, Started: time.Now()}
	if opts.Reproduce != nil {
		res.Reproduce = opts.Reproduce(parsed, seed)
	} else {
		res.Reproduce = fmt.Sprintf("killtest run --seed %d %s", seed, parsed.File)
	}
	p, err := preparePlan(parsed, opts, seed, res.Started)
	if err != nil {
		res.HarnessError = err.Error()
		res.Verdict = report.Unknown
		return res
	}
	r := newRunner(p)
	checks, harnessErr := r.execute(ctx)
	cleanupErr := r.teardown()
	r.render(&res, checks, harnessErr, cleanupErr)
	if res.Verdict == report.Pass {
		_ = os.RemoveAll(r.tmp)
	} else {
		res.LogsDir = r.tmp
	}
	return res
}

// preparePlan makes ${TMP}, picks the ports and instantiates the scenario into a plan. On an
// error nothing is left behind.
func preparePlan(parsed *scenario.Scenario, opts Options, seed int64, start time.Time) (*plan, error) {
	tmp, err := os.MkdirTemp("", "killtest-"+parsed.Name+"-")
	if err != nil {
		return nil, fmt.Errorf("create temp dir: %w", err)
	}
	id := newID()
	p, err := func() (*plan, error) {
		ports, err := freePorts(scenario.NumPorts)
		if err != nil {
			return nil, err
		}
		sc, err := parsed.Instantiate(scenario.Builtins{TMP: tmp, Seed: seed, Run: id, TestData: opts.TestData, Ports: ports})
		if err != nil {
			return nil, err
		}
		return newPlan(sc, opts, id, seed, start, tmp)
	}()
	if err != nil {
		_ = os.RemoveAll(tmp)
		return nil, err
	}
	return p, nil
}

// render fills the report of the run: the checks, the errors as text, the timeline, notes,
// chart, samples and the verdict. Call it after teardown.
func (r *runner) render(res *report.Scenario, checks []report.Check, harnessErr, cleanupErr error) {
	res.Checks = append(append(r.res.setup, r.res.before...), checks...)
	if harnessErr != nil {
		res.HarnessError = harnessErr.Error()
	}
	if cleanupErr != nil {
		res.CleanupError = cleanupErr.Error()
	}
	r.observerNotes()
	res.Events = r.live.events
	res.Notes = r.res.notes
	res.Chart = r.chart()
	r.decorate(res)
	if r.opts.SamplesDir != "" {
		path := filepath.Join(r.opts.SamplesDir, fmt.Sprintf("samples-%s-%d.csv", res.Name, res.Run))
		if err := r.writeSamples(path); err != nil {
			res.Notes = append(res.Notes, err.Error())
		} else {
			res.Samples = path
		}
	}
	if res.HarnessError == "" && len(res.Checks) == 0 {
		res.HarnessError = "no check ran: the scenario turns every check off (expect) and has no workload, wait or fault to judge, so nothing was judged"
	}
	res.Verdict = report.ScenarioVerdict(res.HarnessError, res.Checks)
	if res.CleanupError != "" {
		res.Verdict = report.Unknown
	}
	res.Duration = time.Since(res.Started)
}

// execute runs the scenario up to the verdicts: prepare, observe, start the components, exercise
// them (workload, faults, waits), stop them and judge. A non-nil error is a harness error.
func (r *runner) execute(parent context.Context) ([]report.Check, error) {
	// ctx bounds the scenario; the checks run under parent, so a scenario that ran out of time
	// is still judged (an interrupt by the user, though, cuts the checks short too).
	ctx, cancel := context.WithTimeout(parent, r.sc.RunTimeout())
	defer cancel()
	if err := r.prepare(ctx); err != nil {
		return nil, err
	}
	if err := r.observe(ctx); err != nil {
		return nil, err
	}
	if err := r.startComponents(ctx); err != nil {
		return r.judgeEarly(parent, err)
	}
	r.exercise(ctx)
	r.stopAll()
	return r.judge(parent), nil
}

// prepare checks what the scenario needs (programs, free ports), makes the logs and tmp
// directories, runs the setup steps and records the files check's trees.
func (r *runner) prepare(ctx context.Context) error {
	for _, need := range r.sc.Needs {
		if _, err := lookPath(need, r.pathEnv); err != nil {
			return fmt.Errorf("needs %s: %w", need, err)
		}
	}
	for _, d := range []string{"logs", "tmp"} {
		if err := os.MkdirAll(filepath.Join(r.tmp, d), 0o755); err != nil {
			return fmt.Errorf("create %s dir: %w", d, err)
		}
	}
	if err := r.checkPorts(); err != nil {
		return err
	}
	if len(r.sc.Setup) > 0 {
		c, err := r.runSetup(ctx)
		r.res.setup = []report.Check{c}
		if err != nil {
			return err
		}
	}
	r.filesBefore()
	return nil
}

// observe makes the run cgroup (where it can) and starts the observer, which samples until
// teardown stops it, through the stop and the checks.
func (r *runner) observe(ctx context.Context) error {
	if !r.opts.NoCgroup {
		cg, err := newRunCgroup(r.id)
		if err != nil {
			r.res.note("no run cgroup (%v): attribution by cookie, descendants and re-parenting only", err)
		} else {
			r.live.cg = cg
			r.res.note("run cgroup %s", cg.dir)
		}
	}
	ocfg := observe.Config{Cookie: r.cookie, Interval: r.opts.Interval, Log: r.log}
	if r.live.cg != nil {
		ocfg.CgroupDir = r.live.cg.dir
	}
	obs, err := observe.New(ocfg)
	if err != nil {
		return fmt.Errorf("observer: %w", err)
	}
	if err := obs.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("start observer: %w", err)
	}
	r.live.obs = obs
	if caps := obs.Capabilities(); !caps.Subreaper {
		r.res.note("not a subreaper (%s): orphans re-parent to PID 1 and are found by cookie only", caps.SubreaperError)
	}
	obs.Mark("start")
	r.event("start", r.sc.Name, fmt.Sprintf("run %s, seed %d, tmp %s", r.id, r.seed, r.tmp))
	return nil
}

// startComponents starts the components in order, each ready before the next.
func (r *runner) startComponents(ctx context.Context) error {
	for _, c := range r.sc.Components {
		if err := r.startComponent(ctx, r.live.comps[c.Name]); err != nil {
			return err
		}
	}
	r.live.obs.Mark("ready")
	r.event("ready", "all components", "")
	return nil
}

// exercise evaluates the "before" probes, runs the workload and the faults together, then polls
// the wait conditions.
func (r *runner) exercise(ctx context.Context) {
	r.res.before = r.probeChecks(ctx, "before")
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	workloadStart := time.Now()
	var wg sync.WaitGroup
	for i, f := range r.sc.Faults {
		wg.Go(func() { r.res.fault(r.runFault(wctx, i, f, workloadStart)) })
	}
	r.runWorkload(wctx)
	wg.Wait()
	r.runWaits(ctx)
}

// stopAll begins the observer's stop phase and stops the components in reverse order.
func (r *runner) stopAll() {
	r.live.obs.BeginStop()
	r.stopComponents()
	r.live.obs.Mark("stopped")
	r.event("mark", "stopped", "")
}

// judgeEarly handles a component that could not start or become ready: a missing program or
// a bad setup is the harness's (unknown); a component that started and died or never became
// ready is the system's failure.
func (r *runner) judgeEarly(ctx context.Context, err error) ([]report.Check, error) {
	r.live.obs.BeginStop()
	r.stopComponents()
	r.live.obs.Mark("stopped")
	var se *startError
	if errors.As(err, &se) && se.started {
		// The workload never ran: judge only what the start-up left behind.
		r.res.aborted = true
		ready := report.Check{Name: "ready", Verdict: report.Fail, Summary: err.Error(), Details: se.lines}
		return append([]report.Check{ready}, r.judge(ctx)...), nil
	}
	return nil, err
}

// observerNotes adds what the observer could not do, or set aside, to the report's notes.
func (r *runner) observerNotes() {
	if r.live.obs == nil {
		return
	}
	caps := r.live.obs.Capabilities()
	if !caps.Pidfd || caps.PidfdError != "" {
		r.res.note("exit times: %s", caps.PidfdError)
	}
	if caps.EnvironIgnored > 0 {
		r.res.note("%d process(es) started on the machine during the run had an unreadable environment but were outside the harness's tree and the run cgroup (the harness is a subreaper, so the system's processes cannot be): not counted (e.g. %s)",
			caps.EnvironIgnored, caps.EnvironIgnoredExample)
	}
}

// freePorts picks n distinct free loopback TCP ports (all held open together, so distinct, then
// released for the system to bind).
func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	var out []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("pick a free loopback port: %w", err)
		}
		lns = append(lns, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}
