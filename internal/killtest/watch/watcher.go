package watch

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"time"

	"github.com/proxyline/proxyline/internal/proctab"
)

// Config configures a Watcher. The zero value of each field but File means its default.
type Config struct {
	// File is the watch file. Required.
	File *File
	// Log receives scan errors. Default: discard.
	Log *slog.Logger
	// ProbeTimeout bounds each probe read. Default 10s.
	ProbeTimeout time.Duration
	// ProbeEnv is the environment of command probes. Default: this process's.
	ProbeEnv []string
	// ProbeDir is the working directory of command probes. Default: this process's.
	ProbeDir string
}

// Watcher scans a deployed system. It keeps what it learnt between scans (orphan candidates,
// growth samples, process details); it is not safe for concurrent use: one Scan at a time.
type Watcher struct {
	cfg     Config
	plan    plan
	log     *slog.Logger
	metrics *Metrics
	self    int

	reader  *proctab.Reader
	procs   []proctab.Proc             // the snapshot buffer, reused
	known   map[proctab.Key]*procInfo  // details read once per process (again after an exec)
	pending map[proctab.Key]*candidate // orphan candidates by identity
	series  map[seriesKey]*series      // growth samples
	judged  map[seriesKey]bool         // series that had a verdict at least once
	denied  int                        // environments unreadable at the last scan
	clock   func() time.Time           // time.Now; tests may not replace it (real time only)
	byPID   map[int]*proctab.Proc      // the last snapshot by pid
	members map[proctab.Key]membership // the last scan's members
}

// New checks cfg and returns a Watcher; it reads nothing yet.
func New(cfg Config) (*Watcher, error) {
	if cfg.File == nil {
		return nil, errors.New("watch: no watch file")
	}
	p, err := compile(cfg.File)
	if err != nil {
		return nil, err
	}
	cfg.ProbeTimeout = cmp.Or(cfg.ProbeTimeout, 10*time.Second)
	if cfg.ProbeEnv == nil {
		cfg.ProbeEnv = os.Environ()
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Watcher{
		cfg: cfg, plan: p, log: log, metrics: newMetrics(cfg.File), self: os.Getpid(),
		reader: proctab.NewReader(), known: map[proctab.Key]*procInfo{},
		pending: map[proctab.Key]*candidate{}, series: map[seriesKey]*series{},
		judged: map[seriesKey]bool{}, clock: time.Now,
	}, nil
}

// Metrics returns the watcher's metrics (its own registry).
func (w *Watcher) Metrics() *Metrics { return w.metrics }

// plan is a watch file with its regular expressions compiled.
type plan struct {
	cookieName, cookieKV string // cookieKV "" when any value counts
	cgroups              []string
	roots, allow         []*regexp.Regexp
	rules                []rule
	watched              []watched
}

type rule struct {
	name          string
	match, parent *regexp.Regexp
}

type watched struct {
	name     string
	match    *regexp.Regexp
	fds, rss *Growth
}

func compile(f *File) (plan, error) {
	var p plan
	var errs []error
	re := func(s string) *regexp.Regexp {
		r, err := regexp.Compile(s)
		if err != nil {
			errs = append(errs, err)
		}
		return r
	}
	if f.System.Cookie != "" {
		name, _, hasValue := cutEq(f.System.Cookie)
		p.cookieName = name
		if hasValue {
			p.cookieKV = f.System.Cookie
		}
	}
	p.cgroups = f.System.Cgroups
	for _, s := range f.System.Roots {
		p.roots = append(p.roots, re(s))
	}
	for _, s := range f.Orphans.Allow {
		p.allow = append(p.allow, re(s))
	}
	for i, r := range f.System.Rules {
		p.rules = append(p.rules, rule{name: cmp.Or(r.Name, fmt.Sprintf("rules[%d]", i)), match: re(r.Match), parent: re(r.Parent)})
	}
	for _, wp := range f.Processes {
		p.watched = append(p.watched, watched{name: wp.Name, match: re(wp.Match), fds: wp.FDs, rss: wp.RSS})
	}
	if len(errs) > 0 {
		return plan{}, fmt.Errorf("watch %s: %w (the file was not checked with Parse)", f.Name, errors.Join(errs...))
	}
	return p, nil
}

func cutEq(s string) (name, value string, ok bool) {
	for i := range len(s) {
		if s[i] == '=' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// anyMatch reports whether one of res matches s.
func anyMatch(res []*regexp.Regexp, s string) bool {
	return slices.ContainsFunc(res, func(r *regexp.Regexp) bool { return r.MatchString(s) })
}
