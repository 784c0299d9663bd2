package watch

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/proxyline/proxyline/internal/killtest/detect"
	"github.com/proxyline/proxyline/internal/killtest/probe"
	"github.com/proxyline/proxyline/internal/secret"
)

// Finding kinds (besides KindFDGrowth and KindRSSGrowth).
const (
	KindOrphan = "orphan"
	KindLimit  = "limit"
)

// Exit codes of `killtest watch --once`, killtest's own.
const (
	ExitClean    = 0 // nothing found, everything judged
	ExitFindings = 1 // at least one finding
	ExitUnknown  = 2 // something could not be judged (and nothing was found)
)

// Finding is one thing wrong with the system, with its evidence. Its Key is stable while the
// same thing stays wrong (the same orphan, the same growing process, the same broken limit),
// which is what alerts are deduplicated by.
type Finding struct {
	Kind     string            `json:"kind"`
	Key      string            `json:"key"`
	Summary  string            `json:"summary"`
	Since    time.Time         `json:"since"` // when the watch first saw it
	Evidence []detect.Evidence `json:"evidence,omitempty"`
	Samples  []Sample          `json:"samples,omitempty"` // growth: the samples judged
	Probe    *ProbeReading     `json:"probe,omitempty"`   // limit: the reading
}

// ProbeReading is a probe's value against a limit.
type ProbeReading struct {
	Probe string  `json:"probe"`
	Value float64 `json:"value"`
	Limit string  `json:"limit"`
}

// Report is what one scan (or Once) found.
type Report struct {
	Watch    string    `json:"watch"`
	Time     time.Time `json:"time"`
	Findings []Finding `json:"findings"`
	// Errors say what could not be judged: the process table, environments, a probe.
	Errors []string `json:"errors,omitempty"`
	// Pending counts orphan candidates not yet orphaned for orphans.after.
	Pending int `json:"pending"`
	// Probes are the values read, by probe name.
	Probes map[string]float64 `json:"probes,omitempty"`

	next time.Time // when the earliest pending candidate is due
}

// Exit is the exit code of the report: 1 with findings (they are real, whatever else could not
// be judged), else 2 when something could not be judged, else 0.
func (r *Report) Exit() int {
	switch {
	case len(r.Findings) > 0:
		return ExitFindings
	case len(r.Errors) > 0:
		return ExitUnknown
	}
	return ExitClean
}

// Scan reads the process table and the probes once, updates what the watcher keeps between
// scans, and reports. It never fails: what it cannot read is in Report.Errors.
func (w *Watcher) Scan(ctx context.Context) *Report {
	start := w.clock()
	r := &Report{Watch: w.cfg.File.Name, Time: start, Probes: map[string]float64{}}
	procs, err := w.reader.Snapshot(w.procs)
	if err != nil {
		r.Errors = append(r.Errors, fmt.Sprintf("read the process table: %v", err))
		w.metrics.scanError("proc")
	} else {
		w.procs = procs
		w.classify()
		if w.plan.cookieName != "" && w.denied > 0 {
			r.Errors = append(r.Errors, fmt.Sprintf("the environment of %d process(es) could not be read: the cookie %s may hide among them (run the watch as root or as the system's user)", w.denied, w.plan.cookieName))
			w.metrics.scanError("environ")
		}
		var orphans []Finding
		orphans, r.Pending, r.next = w.orphans(start)
		r.Findings = append(r.Findings, orphans...)
		r.Findings = append(r.Findings, w.growth(start)...)
	}
	r.Findings = append(r.Findings, w.readProbes(ctx, r)...)
	slices.SortFunc(r.Findings, func(a, b Finding) int { return cmp.Compare(a.Key, b.Key) })
	w.metrics.observeScan(r, w.clock().Sub(start), w.denied, w.series)
	for _, e := range r.Errors {
		w.log.Warn("watch: cannot judge", "watch", r.Watch, "what", e)
	}
	return r
}

// readProbes reads every probe (in name order) and checks the limits.
func (w *Watcher) readProbes(ctx context.Context, r *Report) []Finding {
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range w.cfg.File.Probes {
			if !yield(n) {
				return
			}
		}
	})
	for _, name := range names {
		pctx, cancel := context.WithTimeout(ctx, w.cfg.ProbeTimeout)
		v, err := probe.Value(pctx, w.cfg.File.Probes[name], probe.Env{Environ: w.cfg.ProbeEnv, Dir: w.cfg.ProbeDir})
		cancel()
		if err != nil {
			r.Errors = append(r.Errors, fmt.Sprintf("probe %s: %v", name, secret.Error(err)))
			w.metrics.scanError("probe")
			w.metrics.probe(name, 0, false)
			continue
		}
		r.Probes[name] = v
		w.metrics.probe(name, v, true)
	}
	var found []Finding
	for i, l := range w.cfg.File.Limits {
		v, ok := r.Probes[l.Probe]
		c := l.condition()
		if !ok || c.Holds(v) {
			continue
		}
		found = append(found, Finding{
			Kind:    KindLimit,
			Key:     fmt.Sprintf("limit/%d/%s", i, l.Probe),
			Summary: fmt.Sprintf("limit: probe %s is %g, want %s", l.Probe, v, c),
			Since:   r.Time,
			Probe:   &ProbeReading{Probe: l.Probe, Value: v, Limit: c.String()},
		})
	}
	return found
}

// Once scans until every orphan candidate is judged: when a scan leaves candidates not yet
// orphaned for orphans.after, it waits until the first is due (a timer, not a polling loop) and
// scans again. Candidates first seen more than twice orphans.after after the first scan (a system
// that orphans all the time) are left to the next run: the report counts them in Pending. It
// returns the last report; ctx ends the wait (the report then says the run was interrupted).
func (w *Watcher) Once(ctx context.Context) *Report {
	end := w.clock().Add(2 * w.cfg.File.Orphans.After.Or(DefaultOrphanAfter))
	for {
		r := w.Scan(ctx)
		if r.next.IsZero() || r.next.After(end) {
			return r
		}
		t := time.NewTimer(time.Until(r.next) + time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			r.Errors = append(r.Errors, fmt.Sprintf("interrupted with %d orphan candidate(s) not yet judged: %v", r.Pending, context.Cause(ctx)))
			return r
		case <-t.C:
		}
	}
}
