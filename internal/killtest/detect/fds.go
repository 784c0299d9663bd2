package detect

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/proxyline/proxyline/internal/killtest/observe"
	"github.com/proxyline/proxyline/internal/proctab"
)

// FDOptions configures FDGrowth. Zero values mean the defaults.
type FDOptions struct {
	CyclePrefix string  // marks at the same phase point of each cycle; default "cycle-"
	Warmup      int     // first cycles of each process ignored; default 2
	MinCycles   int     // cycles needed after warm-up to judge a process; default 3
	MinSlope    float64 // Theil–Sen slope that fails, fds per cycle; default 0.5
	MinDelta    int     // and last − first that fails; default 3
}

func (o FDOptions) withDefaults() FDOptions {
	o.CyclePrefix = cmp.Or(o.CyclePrefix, DefaultCyclePrefix)
	o.Warmup = cmp.Or(o.Warmup, 2)
	o.MinCycles = cmp.Or(o.MinCycles, 3)
	o.MinSlope = cmp.Or(o.MinSlope, 0.5)
	o.MinDelta = cmp.Or(o.MinDelta, 3)
	return o
}

// fdKey identifies an open file across marks: the same number pointing at the same target.
// (All pidfds read "anon_inode:[pidfd]", so the number is part of the identity.)
type fdKey struct {
	num    int
	target string
}

// FDGrowth is the fd-leak detector. For every long-lived attributed process it takes the fds
// at each cycle mark after its first Warmup cycles and fails when
//   - the Theil–Sen slope of the counts is ≥ MinSlope fds/cycle and last − first ≥ MinDelta, or
//   - fds of class pidfd appear in a cycle and persist for ≥ 2 later cycles (a forgotten Wait),
//     or fds of class pipe/socket do so in ≥ 2 different cycles.
//
// The evidence names the fd targets that appeared (and disappeared) between the first and the
// last judged cycle, not just counts.
func FDGrowth(o *observe.Observer, opts FDOptions) Result {
	return judgeFDs(o.Marks(), opts.withDefaults())
}

func judgeFDs(marks []observe.Mark, opts FDOptions) Result {
	const check = "fd-growth"
	series, cycles := perProcessCycles(marks, opts.CyclePrefix)
	need := opts.Warmup + opts.MinCycles
	if cycles < need {
		return unknown(check, fmt.Sprintf("%d cycle mark(s) %q*, need %d (%d warm-up + %d)", cycles, opts.CyclePrefix, need, opts.Warmup, opts.MinCycles))
	}
	res := Result{Check: check}
	judged := 0
	for _, k := range sortedKeys(series) {
		pts := series[k]
		var fds [][]proctab.FD
		var labels []string
		for _, pt := range pts {
			if pt.proc.FDs == nil {
				continue
			}
			fds = append(fds, pt.proc.FDs)
			labels = append(labels, pt.mark)
		}
		if len(fds) < need {
			continue
		}
		fds, labels = fds[opts.Warmup:], labels[opts.Warmup:]
		judged++
		counts := make([]float64, len(fds))
		for i, f := range fds {
			counts[i] = float64(len(f))
		}
		slope, _ := TheilSen(slices.Clone(counts))
		delta := len(fds[len(fds)-1]) - len(fds[0])
		growing := slope >= opts.MinSlope && delta >= opts.MinDelta
		persist := persistingTargets(fds)
		if !growing && persist == "" {
			continue
		}
		last := pts[len(pts)-1].proc
		e := Evidence{PID: k.PID, StartTime: k.StartTime, Cmdline: cmdline(last.Cmdline, last.Comm), State: string(rune(last.State)), Class: "fd-leak"}
		var why []string
		if growing {
			why = append(why, fmt.Sprintf("fds grow %.2f/cycle (Theil–Sen over %d cycles, %d → %d)", slope, len(fds), len(fds[0]), len(fds[len(fds)-1])))
		}
		if persist != "" {
			why = append(why, persist)
		}
		why = append(why, "new since "+labels[0]+": "+diffTargets(fds[0], fds[len(fds)-1]))
		e.Detail = strings.Join(why, "; ")
		res.Evidence = append(res.Evidence, e)
		res.Series = append(res.Series, Series{Name: fmt.Sprintf("fds pid %d", k.PID), Unit: "fds", Labels: labels, Values: counts})
	}
	if judged == 0 {
		return unknown(check, fmt.Sprintf("no process lived through %d cycles with readable fds", need))
	}
	if len(res.Evidence) == 0 {
		return pass(check, fmt.Sprintf("%d long-lived process(es), fds flat over %d cycles", judged, cycles-opts.Warmup))
	}
	res.Verdict = Fail
	res.Summary = fmt.Sprintf("%d of %d long-lived process(es) leak fds", len(res.Evidence), judged)
	return res
}

func sortedKeys[V any](m map[observe.Key]V) []observe.Key {
	return slices.SortedFunc(maps.Keys(m), func(a, b observe.Key) int { return a.PID - b.PID })
}

func fdSet(fds []proctab.FD) map[fdKey]string {
	m := make(map[fdKey]string, len(fds))
	for _, f := range fds {
		m[fdKey{f.Num, f.Target}] = f.Class
	}
	return m
}

// persistingTargets reports fds of class pidfd, pipe or socket that appeared in one cycle and
// were still open 2 cycles later. One persisting pidfd fails (a child never waited for); for
// pipes and sockets it takes persisting new ones from 2 different cycles, so that one
// connection opened late and kept open is not called a leak.
func persistingTargets(cycles [][]proctab.FD) string {
	sets := make([]map[fdKey]string, len(cycles))
	for i, c := range cycles {
		sets[i] = fdSet(c)
	}
	var pidfds []string
	var other []string
	otherCycles := map[int]bool{}
	for i := 1; i+2 < len(sets); i++ {
		for k, class := range sets[i] {
			if _, before := sets[i-1][k]; before {
				continue
			}
			if class != proctab.ClassPidfd && class != proctab.ClassPipe && class != proctab.ClassSocket {
				continue
			}
			_, a := sets[i+1][k]
			_, b := sets[i+2][k]
			if !a || !b {
				continue
			}
			s := fmt.Sprintf("fd %d → %s", k.num, k.target)
			if class == proctab.ClassPidfd {
				pidfds = append(pidfds, s)
			} else {
				other = append(other, s)
				otherCycles[i] = true
			}
		}
	}
	var out []string
	if len(pidfds) > 0 {
		slices.Sort(pidfds)
		out = append(out, "pidfds kept open across cycles (a child never waited for): "+limitJoin(pidfds, 8))
	}
	if len(otherCycles) >= 2 {
		slices.Sort(other)
		out = append(out, fmt.Sprintf("pipes/sockets opened in %d cycles and kept: %s", len(otherCycles), limitJoin(other, 8)))
	}
	return strings.Join(out, "; ")
}

// diffTargets describes the fds in b and not in a (+) and in a and not in b (−), grouped.
func diffTargets(a, b []proctab.FD) string {
	sa, sb := fdSet(a), fdSet(b)
	var added, removed []string
	for k := range sb {
		if _, ok := sa[k]; !ok {
			added = append(added, fmt.Sprintf("+fd %d → %s", k.num, k.target))
		}
	}
	for k := range sa {
		if _, ok := sb[k]; !ok {
			removed = append(removed, fmt.Sprintf("−fd %d → %s", k.num, k.target))
		}
	}
	if len(added)+len(removed) == 0 {
		return "none"
	}
	slices.Sort(added)
	slices.Sort(removed)
	return limitJoin(append(added, removed...), 12)
}

func limitJoin(s []string, n int) string {
	if len(s) <= n {
		return strings.Join(s, ", ")
	}
	return strings.Join(s[:n], ", ") + fmt.Sprintf(", … (%d more)", len(s)-n)
}
