package run

import (
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/proxyline/proxyline/internal/killtest/detect"
	"github.com/proxyline/proxyline/internal/killtest/observe"
	"github.com/proxyline/proxyline/internal/killtest/report"
	"github.com/proxyline/proxyline/internal/killtest/scenario"
)

// A run's state comes in three parts, each with its own rule for who may touch it:
//
//   - plan: what the scenario asks for and the run's identity. Built before anything starts,
//     never written after: every goroutine reads it without a lock.
//   - live: the running system and what the harness did to it (processes, components,
//     signals, events, fault trees, the observer). Its mutex guards the lists; the components
//     and processes have their own locks.
//   - results: what the run found along the way (fault outcomes, step and wait errors, notes,
//     the checks made before the workload), turned into the report at the end.
//
// runner ties the three together; its methods are the phases of a run.

// plan is the scenario's plan for one run: the instantiated scenario (components, faults,
// workload, checks to make), the options, the run's identity and the environment every process
// gets. newPlan builds it; nothing writes it after.
type plan struct {
	sc      *scenario.Scenario // instantiated
	opts    Options
	log     *slog.Logger
	id      string
	seed    int64
	start   time.Time
	tmp     string   // ${TMP}
	cookie  string   // CookieKey=id, in the environment of every process of the system
	pathEnv string   // PATH with --bin first, for lookups and every process
	environ []string // the harness's environment, PATH and TMPDIR replaced, the cookie added
}

// newPlan prepares the run's plan: PATH with --bin first and the system's environment.
func newPlan(sc *scenario.Scenario, opts Options, id string, seed int64, start time.Time, tmp string) (*plan, error) {
	p := &plan{sc: sc, opts: opts, log: opts.Log, id: id, seed: seed, start: start, tmp: tmp}
	p.pathEnv = os.Getenv("PATH")
	if opts.Bin != "" {
		abs, err := filepath.Abs(opts.Bin)
		if err != nil {
			return nil, fmt.Errorf("--bin %s: %w", opts.Bin, err)
		}
		p.pathEnv = abs + string(os.PathListSeparator) + p.pathEnv
	}
	p.cookie = CookieKey + "=" + id
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PATH=") || strings.HasPrefix(kv, CookieKey+"=") || strings.HasPrefix(kv, "TMPDIR=") {
			continue
		}
		p.environ = append(p.environ, kv)
	}
	// Temporary files of the system go under ${TMP}, where the files check can see them.
	p.environ = append(p.environ, "PATH="+p.pathEnv, "TMPDIR="+filepath.Join(tmp, "tmp"), p.cookie)
	return p, nil
}

// live is the state of the running system and of what the harness did to it.
//
// cg and obs are set by the observe phase on execute's goroutine before any other goroutine of
// the run starts, and only read after. comps is made whole by newRunner and never written
// after (each component guards its own instances). files is written by execute before the
// components start and timeline by teardown; both are read only after.
type live struct {
	cg       *runCgroup
	obs      *observe.Observer
	comps    map[string]*component // by name, one per scenario component
	files    *filesWatch           // the files check's trees before the run; nil when not asked for
	timeline observe.Timeline      // the observer's record, taken at teardown

	mu       sync.Mutex
	procs    []*proc         // guarded by mu: every process started, for teardown
	events   []report.Event  // guarded by mu: the report's timeline
	signals  []detect.Signal // guarded by mu: every signal sent to the system (faults, stops)
	startups []detect.Window // guarded by mu: each component instance's start-up, start to ready
	trees    []faultTree     // guarded by mu: the process trees at each fault firing
	restarts int             // guarded by mu: restarts done by faults, for mark names
	rng      *mrand.Rand     // guarded by mu: the seeded source of fault moments and picks
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

// started records a new instance as the current one and returns its 1-based number.
func (c *component) started(p *proc) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cur = p
	c.instances = append(c.instances, p)
	return len(c.instances)
}

// all returns every instance started so far, oldest first.
func (c *component) all() []*proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*proc(nil), c.instances...)
}

// track adds a process to those teardown kills.
func (l *live) track(p *proc) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.procs = append(l.procs, p)
}

// started returns every process started so far.
func (l *live) started() []*proc {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*proc(nil), l.procs...)
}

// sent records a signal the harness sent to the system.
func (l *live) sent(s detect.Signal) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.signals = append(l.signals, s)
}

// startup records a component instance's start-up window.
func (l *live) startup(w detect.Window) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.startups = append(l.startups, w)
}

// procOf returns the running process the runner started with identity k, if any.
func (l *live) procOf(k key) *proc {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range l.procs {
		if p.pid == k.PID && (p.startTime == 0 || p.startTime == k.StartTime) && !p.exited() {
			return p
		}
	}
	return nil
}

// startTimeOf is the start time of the last process the runner started with this pid, 0 if none.
func (l *live) startTimeOf(pid int) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.procs) - 1; i >= 0; i-- {
		if l.procs[i].pid == pid {
			return l.procs[i].startTime
		}
	}
	return 0
}

// lastKill is when the runner last sent SIGKILL (stop escalation, restart or a fault), for the
// stopped detector's D-state grace.
func (l *live) lastKill() time.Time {
	var t time.Time
	for _, p := range l.started() {
		p.mu.Lock()
		if (p.signaled == syscall.SIGKILL || p.late > 0) && p.signaledAt.After(t) {
			t = p.signaledAt
		}
		p.mu.Unlock()
	}
	return t
}

// nextRestart counts one more restart and returns the count.
func (l *live) nextRestart() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.restarts++
	return l.restarts
}

// int64N and intN draw from the seeded source.
func (l *live) int64N(n int64) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rng.Int64N(n)
}

func (l *live) intN(n int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rng.IntN(n)
}

// results is what the run found along the way. The lists are appended to by the workload,
// fault and wait phases (the faults from their own goroutines) under mu; setup, before and
// aborted are written on execute's goroutine only, and everything is read after execute
// returns.
type results struct {
	mu        sync.Mutex
	faults    []faultOutcome // guarded by mu: one per fault
	stepErrs  []error        // guarded by mu: workload steps that failed
	waitErrs  []error        // guarded by mu: wait conditions not met
	waitBlind int            // guarded by mu: how many of them had no probe value at all (unknown)
	notes     []string       // guarded by mu: what the report says about the run itself

	setup  []report.Check // the setup check, when the scenario has setup steps
	before []report.Check // probe checks evaluated before the workload
	// aborted is set when a component never became ready: the workload, faults and waits did
	// not run, so only the process checks are judged.
	aborted bool
}

func (s *results) note(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.notes = append(s.notes, fmt.Sprintf(format, args...))
}

func (s *results) fault(out faultOutcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, out)
}

func (s *results) stepFailed(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stepErrs = append(s.stepErrs, err)
}

// waitFailed records a wait condition not met; blind says its probe never gave a value.
func (s *results) waitFailed(err error, blind bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waitErrs = append(s.waitErrs, err)
	if blind {
		s.waitBlind++
	}
}

// runner is one scenario run: its plan, the live state and the results. Its methods are the
// phases of the run (see the package doc).
type runner struct {
	plan
	live *live
	res  *results
}

// newRunner makes the runner of a plan, with one component per scenario component.
func newRunner(p *plan) *runner {
	l := &live{comps: map[string]*component{}, rng: mrand.New(mrand.NewPCG(uint64(p.seed), 0x6b696c6c74657374))}
	for _, c := range p.sc.Components {
		l.comps[c.Name] = &component{spec: c, hub: &lineHub{}}
	}
	return &runner{plan: *p, live: l, res: &results{}}
}

// event records what happened, for the report's timeline and the log.
func (r *runner) event(kind, name, detail string, pids ...int) {
	r.live.mu.Lock()
	defer r.live.mu.Unlock()
	r.live.events = append(r.live.events, report.Event{At: time.Since(r.start), Kind: kind, Name: name, Detail: detail, PIDs: pids})
	r.log.Info("killtest event", "scenario", r.sc.Name, "kind", kind, "name", name, "detail", detail, "pids", pids)
}

// errorTexts renders errors for a report's details.
func errorTexts(errs []error) []string {
	if len(errs) == 0 {
		return nil
	}
	out := make([]string, len(errs))
	for i, err := range errs {
		out[i] = err.Error()
	}
	return out
}

// errorText renders errors on one line, separated by sep.
func errorText(errs []error, sep string) string {
	return strings.Join(errorTexts(errs), sep)
}

var errNoTarget = errors.New("no process matched the target")
