package scenario

import (
	"errors"
	"fmt"
	"net"
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
func (s *Scenario) Validate() error {
	var errs []error
	add := func(path, format string, args ...any) { errs = append(errs, s.errAt(path, format, args...)) }
	if s.Name == "" {
		add("name", "required")
	} else if !nameRE.MatchString(s.Name) {
		add("name", "%q: use letters, digits, '-', '_', '.'", s.Name)
	}
	if len(s.Components) == 0 && len(s.Workload.Steps) == 0 {
		add("components", "a scenario needs at least one component or workload step")
	}
	comps := map[string]bool{}
	for i, c := range s.Components {
		p := fmt.Sprintf("components[%d]", i)
		if c.Name == "" {
			add(p+".name", "required")
		} else if !nameRE.MatchString(c.Name) {
			add(p+".name", "%q: use letters, digits, '-', '_', '.'", c.Name)
		} else if comps[c.Name] {
			add(p+".name", "duplicate component %q", c.Name)
		}
		comps[c.Name] = true
		checkCommand(add, p, c.Command, c.Sh)
		if c.Ready.Log != "" {
			if _, err := regexp.Compile(c.Ready.Log); err != nil {
				add(p+".ready.log", "bad regex: %v", err)
			}
		}
		if c.Ready.TCP != "" {
			checkLoopback(add, p+".ready.tcp", c.Ready.TCP)
		}
		if c.Stop.Signal != "" {
			if _, err := ParseSignal(c.Stop.Signal); err != nil {
				add(p+".stop.signal", "%v", err)
			}
		}
		if _, err := ParseExits(c.Stop.Exit); err != nil {
			add(p+".stop.exit", "%v", err)
		}
	}
	if s.Workload.Cycles < 0 {
		add("workload.cycles", "must be ≥ 0")
	}
	for i, st := range s.Workload.Steps {
		p := fmt.Sprintf("workload.steps[%d]", i)
		checkCommand(add, p, st.Command, st.Sh)
		if _, err := ParseExits(st.Exit); err != nil {
			add(p+".exit", "%v", err)
		}
	}
	for i, f := range s.Faults {
		p := fmt.Sprintf("faults[%d]", i)
		if f.Signal == "" {
			add(p+".signal", "required")
		} else if _, err := ParseSignal(f.Signal); err != nil {
			add(p+".signal", "%v", err)
		}
		t := f.Target
		if t.Component == "" && t.Match == "" {
			add(p+".target", "needs component or match")
		}
		if t.Component != "" && !comps[t.Component] {
			add(p+".target.component", "no component named %q", t.Component)
		}
		if t.Match != "" {
			if _, err := regexp.Compile(t.Match); err != nil {
				add(p+".target.match", "bad regex: %v", err)
			}
		}
		n := 0
		for _, b := range []bool{t.Tree, t.Match != "", t.Random} {
			if b {
				n++
			}
		}
		if n > 1 {
			add(p+".target", "tree, match and random exclude each other")
		}
		if (t.Tree || t.Random) && t.Component == "" {
			add(p+".target.component", "required with tree or random")
		}
		if f.Restart && t.Component == "" {
			add(p+".restart", "needs target.component")
		}
		w := f.When
		kinds := 0
		if w.After > 0 {
			kinds++
		}
		if w.Process != "" {
			kinds++
			if _, err := regexp.Compile(w.Process); err != nil {
				add(p+".when.process", "bad regex: %v", err)
			}
		}
		if w.Log != nil {
			kinds++
			if !comps[w.Log.Component] {
				add(p+".when.log.component", "no component named %q", w.Log.Component)
			}
			if _, err := regexp.Compile(w.Log.Regex); err != nil || w.Log.Regex == "" {
				add(p+".when.log.regex", "want a regex")
			}
		}
		if w.Window != nil {
			kinds++
			if w.Window.To < w.Window.From {
				add(p+".when.window", "to is before from")
			}
		}
		if kinds > 1 {
			add(p+".when", "after, process, log and window exclude each other")
		}
		if f.Repeat < 0 {
			add(p+".repeat", "must be ≥ 0")
		}
	}
	probes := map[string]bool{}
	for name, pr := range s.Probes {
		p := "probes." + name
		probes[name] = true
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
	checkCond := func(p string, c Condition, expect bool) {
		if !probes[c.Probe] {
			add(p+".probe", "no probe named %q", c.Probe)
		}
		if c.Equals == nil && c.AtMost == nil && c.AtLeast == nil {
			add(p, "want equals, at_most or at_least")
		}
		if expect && c.When != "" && c.When != "before" && c.When != "after" {
			add(p+".when", "want before or after, got %q", c.When)
		}
		if !expect && c.When != "" {
			add(p+".when", "only for expect.probes")
		}
	}
	for i, c := range s.Wait {
		checkCond(fmt.Sprintf("wait[%d]", i), c, false)
	}
	for i, c := range s.Expect.Probes {
		checkCond(fmt.Sprintf("expect.probes[%d]", i), c, true)
	}
	if h := s.Expect.History; h != nil {
		checkSource(add, "expect.history.submitted", h.Submitted)
		checkSource(add, "expect.history.results", h.Results)
	}
	if ic := s.Expect.InheritedFDs; ic != nil && ic.Enabled && len(ic.Commands) == 0 {
		add("expect.inherited_fds.commands", "required: which command lines are checkers")
	}
	if pc := s.Expect.Ports; pc != nil {
		for i, port := range pc.Ports {
			if port < 1 || port > 65535 {
				add(fmt.Sprintf("expect.ports.ports[%d]", i), "port %d out of range", port)
			}
		}
	}
	return errors.Join(errs...)
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
