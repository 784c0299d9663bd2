package watch

import (
	"errors"
	"fmt"
	"os"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/proxyline/proxyline/internal/killtest/scenario"
)

// Defaults of a watch file (a zero value means the default).
const (
	DefaultInterval     = 30 * time.Second
	DefaultOrphanAfter  = 5 * time.Second
	DefaultGrowthWindow = 10 * time.Minute
	// MinInterval bounds how often a system is scanned: a scan reads the whole process table.
	MinInterval = 100 * time.Millisecond
)

// File is a watch file: what belongs to a deployed system, and what to watch in it. It is read
// by the rules of scenario files (YAML, unknown fields are errors, every error names
// file:line: field, ${NAME} comes from the environment).
type File struct {
	// Name identifies the system in alerts and metrics. Required: letters, digits, '-', '_', '.'.
	Name string `yaml:"name"`
	// Description is free text, copied into alerts.
	Description string `yaml:"description"`
	// Interval is the time between two scans of a running watch. Default 30s; at least 100ms.
	Interval scenario.Duration `yaml:"interval"`
	// System says which processes belong to the system.
	System System `yaml:"system"`
	// Orphans tunes the orphan check.
	Orphans Orphans `yaml:"orphans"`
	// Processes are named processes watched for fd and memory growth.
	Processes []Watched `yaml:"processes"`
	// Probes are named measurements of the system's queues (the scenario's probe kinds: command,
	// sql, redis), read at every scan and exported as metrics.
	Probes map[string]scenario.Probe `yaml:"probes"`
	// Limits are conditions on probe values; one that does not hold is a finding.
	Limits []Limit `yaml:"limits"`

	// Path is the file the watch came from.
	Path string `yaml:"-"`
}

// System says which processes belong to the system: any of the ways below. A process that
// belongs to it by cookie or cgroup is orphaned when its parent does not belong to it (unless it
// is a root); a process a rule matches is orphaned when its parent does not match the rule.
type System struct {
	// Cookie is an environment variable the system's processes carry: NAME (any value) or
	// NAME=VALUE (exactly). proxyline's supervised tasks carry PROXYLINE_TASK_COOKIE.
	Cookie string `yaml:"cookie"`
	// Cgroups are cgroup v2 paths as /proc/<pid>/cgroup names them
	// ("/system.slice/proxyline.service"); a process in one of them or below belongs.
	Cgroups []string `yaml:"cgroups"`
	// Roots are regular expressions of the command lines of the system's top processes, whose
	// parent is a service manager (systemd, PID 1): they belong to the system and are never
	// orphans. Required with Cookie or Cgroups.
	Roots []string `yaml:"roots"`
	// Rules are parent rules: a process matching Match belongs to the system and must have a
	// parent matching Parent.
	Rules []Rule `yaml:"rules"`
}

// Rule is a parent rule.
type Rule struct {
	// Name labels the rule in evidence. Default "rules[N]".
	Name string `yaml:"name"`
	// Match is a regular expression (unanchored) of the command line (argv joined by spaces).
	Match string `yaml:"match"`
	// Parent is a regular expression of the command line of the parent it must have.
	Parent string `yaml:"parent"`
}

// Orphans tunes the orphan check.
type Orphans struct {
	// After is how long a process must stay orphaned to be a finding (a parent-death signal,
	// a supervisor's kill or its own exit may still end it). Default 5s.
	After scenario.Duration `yaml:"after"`
	// Allow are regular expressions of command lines that are never orphans (daemons the system
	// starts on purpose).
	Allow []string `yaml:"allow"`
}

// Watched is a named process watched for growth: every process whose command line matches.
type Watched struct {
	// Name labels the process in findings and metrics. Required, unique.
	Name string `yaml:"name"`
	// Match is a regular expression (unanchored) of its command line. Required.
	Match string `yaml:"match"`
	// FDs: growth of the number of open file descriptors.
	FDs *Growth `yaml:"fds"`
	// RSS: growth of the resident anonymous memory (RssAnon, else VmRSS), in MiB.
	RSS *Growth `yaml:"rss"`
}

// Growth is a growth threshold over a window: a finding when the trend (Theil–Sen, robust to
// spikes) over the window and the change from the window's first sample to its last both reach
// Max. Judged once the samples span the window.
type Growth struct {
	// Window is the time the growth is measured over. Default 10m.
	Window scenario.Duration `yaml:"window"`
	// Max is the growth that is a finding: fds for fds, MiB for rss. Required, > 0.
	Max float64 `yaml:"max"`
}

// Limit is a condition on a probe's value; at least one comparison.
type Limit struct {
	// Probe names a probe of the file. Required.
	Probe string `yaml:"probe"`
	// Equals, AtMost, AtLeast: the value must equal, be at most, be at least this.
	Equals  *float64 `yaml:"equals"`
	AtMost  *float64 `yaml:"at_most"`
	AtLeast *float64 `yaml:"at_least"`
}

// condition is the limit as the scenario's condition (Holds, String).
func (l Limit) condition() scenario.Condition {
	return scenario.Condition{Probe: l.Probe, Equals: l.Equals, AtMost: l.AtMost, AtLeast: l.AtLeast}
}

// IntervalOr returns the scan interval with its default.
func (f *File) IntervalOr() time.Duration { return f.Interval.Or(DefaultInterval) }

// LoadFile reads and checks a watch file.
func LoadFile(p string) (*File, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("read watch file: %w", err)
	}
	return Parse(p, data)
}

// Parse decodes and checks a watch file; name is used in errors. Every problem is a
// *scenario.FieldError (file:line: field: problem); all are returned joined.
func Parse(name string, data []byte) (*File, error) { return parse(name, data, nil) }

// parse is Parse with the variables of lookup (nil: the environment).
func parse(name string, data []byte, lookup func(string) (string, bool)) (*File, error) {
	var f File
	lines, err := scenario.Decode(name, data, &f, lookup)
	if err != nil {
		return nil, err
	}
	f.Path = name
	c := &checker{file: name, lines: lines}
	c.check(&f)
	if len(c.errs) > 0 {
		return nil, errors.Join(c.errs...)
	}
	return &f, nil
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// checker collects the semantic problems of a watch file, each at its line.
type checker struct {
	file  string
	lines scenario.Lines
	errs  []error
}

func (c *checker) add(p, format string, args ...any) {
	c.errs = append(c.errs, &scenario.FieldError{File: c.file, Line: c.lines.Line(p), Field: p, Msg: fmt.Sprintf(format, args...)})
}

func (c *checker) regex(p, re string) {
	if re == "" {
		c.add(p, "required: a regular expression of a command line")
		return
	}
	if _, err := regexp.Compile(re); err != nil {
		c.add(p, "bad regex: %v", err)
	}
}

func (c *checker) check(f *File) {
	if f.Name == "" {
		c.add("name", "required")
	} else if !nameRE.MatchString(f.Name) {
		c.add("name", "%q: use letters, digits, '-', '_', '.'", f.Name)
	}
	if f.Interval != 0 && f.Interval.D() < MinInterval {
		c.add("interval", "%s is below the minimum %s (a scan reads the whole process table)", f.Interval.D(), MinInterval)
	}
	c.system(f.System)
	for i, re := range f.Orphans.Allow {
		c.regex(fmt.Sprintf("orphans.allow[%d]", i), re)
	}
	c.processes(f.Processes)
	for name, p := range f.Probes {
		if !nameRE.MatchString(name) {
			c.add("probes."+name, "probe name %q: use letters, digits, '-', '_', '.'", name)
		}
		scenario.CheckProbe(c.add, "probes."+name, p)
	}
	for i, l := range f.Limits {
		p := fmt.Sprintf("limits[%d]", i)
		if _, ok := f.Probes[l.Probe]; !ok {
			c.add(p+".probe", "no probe named %q", l.Probe)
		}
		if l.Equals == nil && l.AtMost == nil && l.AtLeast == nil {
			c.add(p, "want equals, at_most or at_least")
		}
	}
	if len(f.Processes) == 0 && len(f.Probes) == 0 && !f.System.given() {
		c.add("system", "nothing to watch: give system (orphans), processes (growth) or probes")
	}
}

func (s System) given() bool { return s.Cookie != "" || len(s.Cgroups) > 0 || len(s.Rules) > 0 }

func (c *checker) system(s System) {
	if s.Cookie != "" {
		name, _, _ := strings.Cut(s.Cookie, "=")
		if !envNameRE.MatchString(name) {
			c.add("system.cookie", "want NAME or NAME=VALUE of an environment variable, got %q", s.Cookie)
		}
	}
	for i, cg := range s.Cgroups {
		if !strings.HasPrefix(cg, "/") || path.Clean(cg) != cg {
			c.add(fmt.Sprintf("system.cgroups[%d]", i), "want a clean absolute cgroup path as /proc/<pid>/cgroup names it (/system.slice/x.service), got %q", cg)
		} else if cg == "/" {
			c.add(fmt.Sprintf("system.cgroups[%d]", i), "the root cgroup holds every process of the machine, not a system")
		}
	}
	if (s.Cookie != "" || len(s.Cgroups) > 0) && len(s.Roots) == 0 {
		c.add("system.roots", "required with cookie or cgroups: the command lines of the system's top processes, whose parent is the service manager (else each would be an orphan)")
	}
	for i, re := range s.Roots {
		c.regex(fmt.Sprintf("system.roots[%d]", i), re)
	}
	for i, r := range s.Rules {
		p := fmt.Sprintf("system.rules[%d]", i)
		c.regex(p+".match", r.Match)
		c.regex(p+".parent", r.Parent)
	}
}

func (c *checker) processes(ws []Watched) {
	seen := map[string]bool{}
	for i, w := range ws {
		p := fmt.Sprintf("processes[%d]", i)
		switch {
		case w.Name == "":
			c.add(p+".name", "required")
		case !nameRE.MatchString(w.Name):
			c.add(p+".name", "%q: use letters, digits, '-', '_', '.'", w.Name)
		case seen[w.Name]:
			c.add(p+".name", "duplicate process %q", w.Name)
		}
		seen[w.Name] = true
		c.regex(p+".match", w.Match)
		if w.FDs == nil && w.RSS == nil {
			c.add(p, "want fds or rss (or both)")
		}
		if w.FDs != nil && !(w.FDs.Max > 0) {
			c.add(p+".fds.max", "required: the growth over the window that is a finding (> 0)")
		}
		if w.RSS != nil && !(w.RSS.Max > 0) {
			c.add(p+".rss.max", "required: the growth over the window that is a finding (> 0)")
		}
	}
}
