package scenario

import (
	"errors"
	"fmt"
	"net"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Defaults applied by the getters below (zero value means default).
const (
	DefaultTimeout      = 60 * time.Second
	DefaultReadyTimeout = 10 * time.Second
	DefaultStopDeadline = 5 * time.Second
	DefaultStepTimeout  = 30 * time.Second
	DefaultWaitTimeout  = 30 * time.Second
	DefaultOrphanGrace  = 2 * time.Second
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

var signals = map[string]syscall.Signal{
	"SIGTERM": syscall.SIGTERM, "SIGKILL": syscall.SIGKILL, "SIGINT": syscall.SIGINT,
	"SIGHUP": syscall.SIGHUP, "SIGSTOP": syscall.SIGSTOP, "SIGCONT": syscall.SIGCONT,
	"SIGQUIT": syscall.SIGQUIT, "SIGUSR1": syscall.SIGUSR1, "SIGUSR2": syscall.SIGUSR2,
}

// ParseSignal accepts "SIGTERM", "TERM" or "term".
func ParseSignal(s string) (syscall.Signal, error) {
	u := strings.ToUpper(strings.TrimSpace(s))
	if !strings.HasPrefix(u, "SIG") {
		u = "SIG" + u
	}
	if sig, ok := signals[u]; ok {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q (want SIGTERM, SIGKILL, SIGINT, SIGHUP, SIGSTOP, SIGCONT, SIGQUIT, SIGUSR1, SIGUSR2)", s)
}

// ExitStatus is an accepted exit: a code, or death by a signal.
type ExitStatus struct {
	Code   int
	Signal syscall.Signal // non-zero: killed by this signal
}

func (e ExitStatus) String() string {
	if e.Signal != 0 {
		return "killed by " + SignalName(e.Signal)
	}
	return "exit " + strconv.Itoa(e.Code)
}

// SignalName is "SIGTERM" for syscall.SIGTERM.
func SignalName(sig syscall.Signal) string {
	for k, v := range signals {
		if v == sig {
			return k
		}
	}
	return fmt.Sprintf("signal %d", int(sig))
}

// ParseExits parses accepted exits; none means [0].
func ParseExits(list []string) ([]ExitStatus, error) {
	if len(list) == 0 {
		return []ExitStatus{{Code: 0}}, nil
	}
	var out []ExitStatus
	for _, s := range list {
		if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil {
			if n < 0 || n > 255 {
				return nil, fmt.Errorf("exit code %d out of range 0-255", n)
			}
			out = append(out, ExitStatus{Code: n})
			continue
		}
		sig, err := ParseSignal(s)
		if err != nil {
			return nil, fmt.Errorf("exit %q: want a number 0-255 or a signal name", s)
		}
		out = append(out, ExitStatus{Signal: sig})
	}
	return out, nil
}

// Validate checks the semantics of an instantiated scenario; every error names file:line:field.
// The checks go part by part, in the order of the file: name, components, workload and setup,
// faults, probes, wait and expect.probes conditions, the other expectations.
func (s *Scenario) Validate() error {
	v := &validator{s: s, comps: map[string]bool{}, probes: map[string]bool{}}
	v.name()
	for i, c := range s.Components {
		v.component(fmt.Sprintf("components[%d]", i), c)
	}
	v.steps()
	for i, f := range s.Faults {
		v.fault(fmt.Sprintf("faults[%d]", i), f)
	}
	for name, pr := range s.Probes {
		v.probe("probes."+name, pr)
	}
	for name := range s.Probes {
		v.probes[name] = true
	}
	for i, c := range s.Wait {
		v.condition(fmt.Sprintf("wait[%d]", i), c, false)
	}
	for i, c := range s.Expect.Probes {
		v.condition(fmt.Sprintf("expect.probes[%d]", i), c, true)
	}
	v.expectations()
	return errors.Join(v.errs...)
}

// validator collects the errors of one Validate, each at its file:line:field.
type validator struct {
	s      *Scenario
	errs   []error
	comps  map[string]bool // component names seen so far
	probes map[string]bool // probe names
}

// add records an error at path (a field path such as "faults[2].target").
func (v *validator) add(path, format string, args ...any) {
	v.errs = append(v.errs, v.s.errAt(path, format, args...))
}

// name checks the scenario's name, and that it has something to run.
func (v *validator) name() {
	s := v.s
	if s.Name == "" {
		v.add("name", "required")
	} else if !nameRE.MatchString(s.Name) {
		v.add("name", "%q: use letters, digits, '-', '_', '.'", s.Name)
	}
	if len(s.Components) == 0 && len(s.Workload.Steps) == 0 {
		v.add("components", "a scenario needs at least one component or workload step")
	}
}

// component checks one component: a unique name, its command, readiness and stop.
func (v *validator) component(p string, c Component) {
	if c.Name == "" {
		v.add(p+".name", "required")
	} else if !nameRE.MatchString(c.Name) {
		v.add(p+".name", "%q: use letters, digits, '-', '_', '.'", c.Name)
	} else if v.comps[c.Name] {
		v.add(p+".name", "duplicate component %q", c.Name)
	}
	v.comps[c.Name] = true
	checkCommand(v.add, p, c.Command, c.Sh)
	if c.Ready.Log != "" {
		if _, err := regexp.Compile(c.Ready.Log); err != nil {
			v.add(p+".ready.log", "bad regex: %v", err)
		}
	}
	if c.Ready.TCP != "" {
		checkLoopback(v.add, p+".ready.tcp", c.Ready.TCP)
	}
	if c.Stop.Signal != "" {
		if _, err := ParseSignal(c.Stop.Signal); err != nil {
			v.add(p+".stop.signal", "%v", err)
		}
	}
	checkExits(v.add, p+".stop.exit", c.Stop.Exit)
}

// steps checks the workload and the setup steps.
func (v *validator) steps() {
	s := v.s
	if s.Workload.Cycles < 0 {
		v.add("workload.cycles", "must be ≥ 0")
	}
	for i, st := range s.Workload.Steps {
		p := fmt.Sprintf("workload.steps[%d]", i)
		checkCommand(v.add, p, st.Command, st.Sh)
		checkExits(v.add, p+".exit", st.Exit)
	}
	for i, st := range s.Setup {
		p := fmt.Sprintf("setup[%d]", i)
		checkCommand(v.add, p, st.Command, st.Sh)
		checkExits(v.add, p+".exit", st.Exit)
		if st.Background {
			v.add(p+".background", "not allowed in setup: each setup step must finish before the run starts")
		}
	}
}

// fault checks one fault: its signal, its target, when it fires, how often.
func (v *validator) fault(p string, f Fault) {
	if f.Signal == "" {
		v.add(p+".signal", "required")
	} else if _, err := ParseSignal(f.Signal); err != nil {
		v.add(p+".signal", "%v", err)
	}
	v.target(p, f.Target)
	if f.Restart && f.Target.Component == "" {
		v.add(p+".restart", "needs target.component")
	}
	v.when(p, f.When)
	if f.Repeat < 0 {
		v.add(p+".repeat", "must be ≥ 0")
	}
}

// target checks a fault's target: a known component or a valid regex, one way of choosing.
func (v *validator) target(p string, t Target) {
	if t.Component == "" && t.Match == "" {
		v.add(p+".target", "needs component or match")
	}
	if t.Component != "" && !v.comps[t.Component] {
		v.add(p+".target.component", "no component named %q", t.Component)
	}
	if t.Match != "" {
		if _, err := regexp.Compile(t.Match); err != nil {
			v.add(p+".target.match", "bad regex: %v", err)
		}
	}
	if f := v.s.later(p+".target", t.Tree, "tree", t.Match != "", "match", t.Random, "random"); f != "" {
		v.add(f, "tree, match and random exclude each other")
	}
	if (t.Tree || t.Random) && t.Component == "" {
		v.add(p+".target.component", "required with tree or random")
	}
}

// when checks a fault's trigger: one of after, process, log and window, each well-formed.
func (v *validator) when(p string, w When) {
	if w.Process != "" {
		if _, err := regexp.Compile(w.Process); err != nil {
			v.add(p+".when.process", "bad regex: %v", err)
		}
	}
	if w.Log != nil {
		if !v.comps[w.Log.Component] {
			v.add(p+".when.log.component", "no component named %q", w.Log.Component)
		}
		if _, err := regexp.Compile(w.Log.Regex); err != nil || w.Log.Regex == "" {
			v.add(p+".when.log.regex", "want a regex")
		}
	}
	if w.Window != nil && w.Window.To < w.Window.From {
		v.add(p+".when.window.to", "to is before from")
	}
	if f := v.s.later(p+".when", w.After > 0, "after", w.Process != "", "process", w.Log != nil, "log", w.Window != nil, "window"); f != "" {
		v.add(f, "after, process, log and window exclude each other")
	}
}

// probe checks one probe: exactly one of command, sql and redis, each well-formed.
func (v *validator) probe(p string, pr Probe) { CheckProbe(v.add, p, pr) }

// CheckProbe checks a probe definition as Validate does for a scenario's probes: exactly one of
// command, sql and redis, each well-formed, Redis on loopback only. Each problem goes to add with
// its field path under p ("probes.queue.redis.op"). Other files that define probes (killtest
// watch's) use it so a probe means the same everywhere.
func CheckProbe(add func(path, format string, args ...any), p string, pr Probe) {
	n := 0
	if pr.Command != nil {
		n++
		checkCommand(add, p+".command", pr.Command.Command, pr.Command.Sh)
	}
	if pr.SQL != nil {
		n++
		checkSQL(add, p+".sql", pr.SQL)
	}
	if pr.Redis != nil {
		n++
		switch strings.ToLower(pr.Redis.Op) {
		case "llen", "hlen", "zcard", "scard":
		default:
			add(p+".redis.op", "want llen, hlen, zcard or scard, got %q", pr.Redis.Op)
		}
		if len(pr.Redis.Keys) == 0 {
			add(p+".redis.keys", "required")
		}
		if pr.Redis.Addr != "" {
			checkLoopback(add, p+".redis.addr", pr.Redis.Addr)
		}
	}
	if n != 1 {
		add(p, "want exactly one of command, sql, redis")
	}
}

// condition checks a wait or expect.probes condition: a known probe and a comparison; "when"
// only for expectations.
func (v *validator) condition(p string, c Condition, expect bool) {
	if !v.probes[c.Probe] {
		v.add(p+".probe", "no probe named %q", c.Probe)
	}
	if c.Equals == nil && c.AtMost == nil && c.AtLeast == nil {
		v.add(p, "want equals, at_most or at_least")
	}
	if expect && c.When != "" && c.When != "before" && c.When != "after" {
		v.add(p+".when", "want before or after, got %q", c.When)
	}
	if !expect && c.When != "" {
		v.add(p+".when", "only for expect.probes")
	}
}

// expectations checks the expectations other than probes: history sources, inherited fds,
// leaked files, ports.
func (v *validator) expectations() {
	e := v.s.Expect
	if h := e.History; h != nil {
		checkSource(v.add, "expect.history.submitted", h.Submitted)
		checkSource(v.add, "expect.history.results", h.Results)
	}
	if ic := e.InheritedFDs; ic != nil && ic.Enabled && len(ic.Commands) == 0 {
		v.add("expect.inherited_fds.commands", "required: which command lines are checkers")
	}
	if fc := e.Files; fc != nil && fc.Enabled {
		for i, g := range fc.Ignore {
			if _, err := path.Match(g, ""); err != nil || g == "" {
				v.add(fmt.Sprintf("expect.files.ignore[%d]", i), "bad glob %q", g)
			}
		}
		for i, d := range fc.Dirs {
			if d == "" || filepath.Clean(d) == "/" {
				v.add(fmt.Sprintf("expect.files.dirs[%d]", i), "want a directory of the system's, not %q", d)
			}
		}
	}
	if oc := e.Orphans; oc != nil {
		for i, re := range oc.Allow {
			if _, err := regexp.Compile(re); err != nil || re == "" {
				v.add(fmt.Sprintf("expect.orphans.allow[%d]", i), "want a regex of a daemon's command line: %q", re)
			}
		}
	}
	if pc := e.Ports; pc != nil {
		for i, port := range pc.Ports {
			if port < 1 || port > 65535 {
				v.add(fmt.Sprintf("expect.ports.ports[%d]", i), "port %d out of range", port)
			}
		}
	}
}

// later returns the path of the last given of mutually exclusive fields (pairs of given, name
// under base) when more than one is given: the line that made the conflict. "" otherwise.
func (s *Scenario) later(base string, pairs ...any) string {
	var given []string
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i].(bool) {
			given = append(given, base+"."+pairs[i+1].(string))
		}
	}
	if len(given) < 2 {
		return ""
	}
	last := given[0]
	for _, g := range given[1:] {
		if s.Line(g) >= s.Line(last) {
			last = g
		}
	}
	return last
}

// checkExits checks each accepted exit status, naming the bad item.
func checkExits(add func(string, string, ...any), p string, list []string) {
	for i, e := range list {
		if _, err := ParseExits([]string{e}); err != nil {
			add(fmt.Sprintf("%s[%d]", p, i), "%v", err)
		}
	}
}

func checkCommand(add func(string, string, ...any), p string, argv []string, sh string) {
	switch {
	case len(argv) == 0 && sh == "":
		add(p, "want command (a list) or sh (a string)")
	case len(argv) > 0 && sh != "":
		add(p, "command and sh exclude each other")
	case len(argv) > 0 && argv[0] == "":
		add(p+".command[0]", "empty program name")
	}
}

func checkSQL(add func(string, string, ...any), p string, q *SQLProbe) {
	switch q.Driver {
	case "sqlite", "postgres":
	default:
		add(p+".driver", "want sqlite or postgres, got %q", q.Driver)
	}
	if q.DSN == "" {
		add(p+".dsn", "required")
	}
	if q.Query == "" {
		add(p+".query", "required")
	}
}

func checkSource(add func(string, string, ...any), p string, src Source) {
	n := 0
	if src.File != "" {
		n++
	}
	if src.JSONL != "" {
		n++
	}
	if src.SQL != nil {
		n++
		checkSQL(add, p+".sql", src.SQL)
	}
	if n != 1 {
		add(p, "want exactly one of file, jsonl, sql")
	}
}

// checkLoopback rejects addresses off the machine: killtest only ever talks to loopback.
func checkLoopback(add func(string, string, ...any), p, addr string) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		add(p, "want host:port: %v", err)
		return
	}
	if host == "localhost" {
		return
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		add(p, "%s is not a loopback address (killtest talks to 127.0.0.0/8 and ::1 only)", host)
	}
}

// AutoTrendCycles is how many cycles turn the fd and memory trend checks on by default: 2
// warm-up cycles plus 3 judged ones, the detectors' defaults.
const AutoTrendCycles = 5

// Cycles reports whether the scenario has enough restart or workload cycles (AutoTrendCycles)
// for the fd and memory trend checks to run by default.
func (s *Scenario) Cycles() bool {
	n := 0
	if s.Workload.Cycles > 1 {
		n = s.Workload.Cycles
	}
	for _, f := range s.Faults {
		if f.Restart {
			n += max(f.Repeat, 1)
		}
	}
	return n >= AutoTrendCycles
}

// TimeoutOr etc. are small accessors applying the documented defaults.

// RunTimeout is Timeout or the default.
func (s *Scenario) RunTimeout() time.Duration { return or(s.Timeout.D(), DefaultTimeout) }

func or(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Or returns d, or def when d is zero.
func (d Duration) Or(def time.Duration) time.Duration { return or(d.D(), def) }
