package run

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
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

// runner is the state of one scenario run.
type runner struct {
	sc      *scenario.Scenario // instantiated
	opts    Options
	log     *slog.Logger
	id      string
	seed    int64
	start   time.Time
	tmp     string
	cookie  string
	environ []string // harness env + PATH with Bin + cookie
	pathEnv string
	cg      *runCgroup
	obs     *observe.Observer
	// timeline is the observer's record, taken at teardown.
	timeline observe.Timeline
	rng      *mrand.Rand // guarded by mu

	mu       sync.Mutex
	events   []report.Event // guarded by mu
	procs    []*proc        // guarded by mu: every process started, for teardown
	comps    map[string]*component
	notes    []string // guarded by mu
	restarts int      // guarded by mu: restarts done by faults, for mark names

	// Results gathered along the way.
	faults   []faultOutcome // guarded by mu
	stepErrs []string       // guarded by mu
	waitErrs []string       // guarded by mu
	before   []report.Check // probe checks evaluated before the workload
	// aborted is set when a component never became ready: the workload, faults and waits did
	// not run, so only the process checks are judged.
	aborted bool
}

// component is a long-running process of the scenario, across restarts.
type component struct {
	spec      scenario.Component
	hub       *lineHub
	mu        sync.Mutex
	cur       *proc   // guarded by mu
	instances []*proc // guarded by mu
}

func (c *component) current() *proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur
}

func (r *runner) track(p *proc) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.procs = append(r.procs, p)
}

func (r *runner) event(kind, name, detail string, pids ...int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, report.Event{At: time.Since(r.start), Kind: kind, Name: name, Detail: detail, PIDs: pids})
	r.log.Info("killtest event", "scenario", r.sc.Name, "kind", kind, "name", name, "detail", detail, "pids", pids)
}

func (r *runner) note(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
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
	r := &runner{opts: opts, log: opts.Log, id: newID(), seed: seed, start: res.Started, comps: map[string]*component{}}
	r.rng = mrand.New(mrand.NewPCG(uint64(seed), 0x6b696c6c74657374))

	tmp, err := os.MkdirTemp("", "killtest-"+parsed.Name+"-")
	if err != nil {
		res.HarnessError = fmt.Sprintf("create temp dir: %v", err)
		res.Verdict = report.Unknown
		return res
	}
	r.tmp = tmp
	ports, err := freePorts(scenario.NumPorts)
	if err != nil {
		_ = os.RemoveAll(tmp)
		res.HarnessError = err.Error()
		res.Verdict = report.Unknown
		return res
	}
	sc, err := parsed.Instantiate(scenario.Builtins{TMP: tmp, Seed: seed, Run: r.id, TestData: opts.TestData, Ports: ports})
	if err != nil {
		_ = os.RemoveAll(tmp)
		res.HarnessError = err.Error()
		res.Verdict = report.Unknown
		return res
	}
	r.sc = sc
	checks, harnessErr := r.execute(ctx)
	cleanupErr := r.teardown()
	res.Checks = append(r.before, checks...)
	res.HarnessError = harnessErr
	if cleanupErr != nil {
		res.CleanupError = cleanupErr.Error()
	}
	res.Events = r.events
	res.Notes = r.notes
	res.Chart = r.chart()
	if opts.SamplesDir != "" {
		path := filepath.Join(opts.SamplesDir, fmt.Sprintf("samples-%s-%d.csv", parsed.Name, run))
		if err := r.writeSamples(path); err != nil {
			res.Notes = append(res.Notes, err.Error())
		} else {
			res.Samples = path
		}
	}
	res.Verdict = report.ScenarioVerdict(res.HarnessError, res.Checks)
	if res.CleanupError != "" {
		res.Verdict = report.Unknown
	}
	res.Duration = time.Since(res.Started)
	if res.Verdict == report.Pass {
		_ = os.RemoveAll(tmp)
	} else {
		res.LogsDir = tmp
	}
	return res
}

// execute runs the scenario up to the verdicts. A non-empty string is a harness error.
func (r *runner) execute(parent context.Context) ([]report.Check, string) {
	sc := r.sc
	// ctx bounds the scenario; the checks run under parent, so a scenario that ran out of time
	// is still judged (an interrupt by the user, though, cuts the checks short too).
	ctx, cancel := context.WithTimeout(parent, sc.RunTimeout())
	defer cancel()

	// PATH with --bin first, used for lookups and given to every process.
	r.pathEnv = os.Getenv("PATH")
	if r.opts.Bin != "" {
		abs, err := filepath.Abs(r.opts.Bin)
		if err != nil {
			return nil, fmt.Sprintf("--bin %s: %v", r.opts.Bin, err)
		}
		r.pathEnv = abs + string(os.PathListSeparator) + r.pathEnv
	}
	r.cookie = CookieKey + "=" + r.id
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PATH=") || strings.HasPrefix(kv, CookieKey+"=") {
			continue
		}
		r.environ = append(r.environ, kv)
	}
	r.environ = append(r.environ, "PATH="+r.pathEnv, r.cookie)
	for _, need := range sc.Needs {
		if _, err := lookPath(need, r.pathEnv); err != nil {
			return nil, fmt.Sprintf("needs %s: %v", need, err)
		}
	}
	if err := os.MkdirAll(filepath.Join(r.tmp, "logs"), 0o755); err != nil {
		return nil, fmt.Sprintf("create logs dir: %v", err)
	}

	if !r.opts.NoCgroup {
		cg, err := newRunCgroup(r.id)
		if err != nil {
			r.note("no run cgroup (%v): attribution by cookie, descendants and re-parenting only", err)
		} else {
			r.cg = cg
			r.note("run cgroup %s", cg.dir)
		}
	}
	ocfg := observe.Config{Cookie: r.cookie, Interval: r.opts.Interval, Log: r.log}
	if r.cg != nil {
		ocfg.CgroupDir = r.cg.dir
	}
	obs, err := observe.New(ocfg)
	if err != nil {
		return nil, fmt.Sprintf("observer: %v", err)
	}
	// The observer samples until teardown stops it, through the stop and the checks.
	if err := obs.Start(context.WithoutCancel(ctx)); err != nil {
		return nil, fmt.Sprintf("start observer: %v", err)
	}
	r.obs = obs
	caps := obs.Capabilities()
	if !caps.Subreaper {
		r.note("not a subreaper (%s): orphans re-parent to PID 1 and are found by cookie only", caps.SubreaperError)
	}
	obs.Mark("start")
	r.event("start", sc.Name, fmt.Sprintf("run %s, seed %d, tmp %s", r.id, r.seed, r.tmp))

	for _, c := range sc.Components {
		comp := &component{spec: c, hub: &lineHub{}}
		r.comps[c.Name] = comp
		if err := r.startComponent(ctx, comp); err != nil {
			return r.judgeEarly(parent, err)
		}
	}
	obs.Mark("ready")
	r.event("ready", "all components", "")
	r.before = r.probeChecks(ctx, "before")

	// Workload and faults run together.
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	workloadStart := time.Now()
	var wg sync.WaitGroup
	for i, f := range sc.Faults {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := r.runFault(wctx, i, f, workloadStart)
			r.mu.Lock()
			r.faults = append(r.faults, out)
			r.mu.Unlock()
		}()
	}
	r.runWorkload(wctx)
	wg.Wait()
	r.runWaits(ctx)

	r.stopComponents()
	obs.Mark("stopped")
	r.event("mark", "stopped", "")
	return r.judge(parent), ""
}

// judgeEarly handles a component that could not start or become ready: a missing program or
// a bad setup is the harness's (unknown); a component that started and died or never became
// ready is the system's failure.
func (r *runner) judgeEarly(ctx context.Context, err error) ([]report.Check, string) {
	r.stopComponents()
	r.obs.Mark("stopped")
	var se *startError
	if errors.As(err, &se) && se.started {
		// The workload never ran: judge only what the start-up left behind.
		r.aborted = true
		ready := report.Check{Name: "ready", Verdict: report.Fail, Summary: err.Error(), Details: se.lines}
		return append([]report.Check{ready}, r.judge(ctx)...), ""
	}
	return nil, err.Error()
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
