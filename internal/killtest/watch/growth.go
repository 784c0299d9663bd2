package watch

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/proxyline/proxyline/internal/killtest/detect"
	"github.com/proxyline/proxyline/internal/proctab"
)

// Growth kinds, also the Kind of their findings.
const (
	KindFDGrowth  = "fd-growth"
	KindRSSGrowth = "rss-growth"
)

// maxSamples bounds one series: beyond it every other sample is dropped (the trend is fitted on
// times, so thinning does not bias it).
const maxSamples = 512

// Sample is one measurement of a watched process.
type Sample struct {
	T time.Time `json:"t"`
	V float64   `json:"v"`
}

// seriesKey identifies the samples of one kind of one process instance.
type seriesKey struct {
	Process   string `json:"process"`
	Kind      string `json:"kind"`
	PID       int    `json:"pid"`
	StartTime uint64 `json:"start_time"`
}

type series struct {
	cmdline string
	samples []Sample
}

// growth samples every watched process of the last snapshot, forgets the series of processes
// gone, and judges each series that spans its window.
func (w *Watcher) growth(now time.Time) []Finding {
	live := map[seriesKey]bool{}
	var found []Finding
	for i := range w.procs {
		p := &w.procs[i]
		in := w.known[p.Key()]
		if in == nil {
			continue
		}
		for _, wp := range w.plan.watched {
			if !wp.match.MatchString(in.cmdline) {
				continue
			}
			if f, ok := w.sample(p, in, wp.name, KindFDGrowth, wp.fds, now, live); ok {
				found = append(found, f)
			}
			if f, ok := w.sample(p, in, wp.name, KindRSSGrowth, wp.rss, now, live); ok {
				found = append(found, f)
			}
		}
	}
	for k := range w.series {
		if !live[k] {
			delete(w.series, k)
			delete(w.judged, k)
		}
	}
	return found
}

// sample measures one kind of p, adds it to its series and judges the series.
func (w *Watcher) sample(p *proctab.Proc, in *procInfo, name, kind string, g *Growth, now time.Time, live map[seriesKey]bool) (Finding, bool) {
	if g == nil {
		return Finding{}, false
	}
	k := seriesKey{Process: name, Kind: kind, PID: p.PID, StartTime: p.StartTime}
	var v float64
	var fds []proctab.FD
	switch kind {
	case KindFDGrowth:
		var err error
		if fds, err = proctab.FDs(p.PID); err != nil {
			return Finding{}, false // gone, or not ours to read: no sample
		}
		v = float64(len(fds))
	default:
		b, err := proctab.RSSAnon(p.PID)
		if err != nil {
			return Finding{}, false
		}
		v = float64(b)
	}
	live[k] = true
	s := w.series[k]
	if s == nil {
		s = &series{}
		w.series[k] = s
	}
	s.cmdline = in.cmdline
	s.samples = trim(append(s.samples, Sample{T: now, V: v}), now.Add(-g.Window.Or(DefaultGrowthWindow)))
	w.metrics.observeProcess(name, kind, p.PID, v)
	trend, delta, ok := judge(s.samples, now, g.Window.Or(DefaultGrowthWindow))
	if !ok {
		return Finding{}, false
	}
	w.judged[k] = true
	limit := g.Max
	if kind == KindRSSGrowth {
		limit *= 1 << 20
	}
	if trend < limit || delta < limit {
		return Finding{}, false
	}
	return growthFinding(k, s, p, trend, g, fds), true
}

// trim drops the samples before from, keeping the last one before it (so the series spans the
// whole window once it is long enough), and thins a series grown past maxSamples.
func trim(ss []Sample, from time.Time) []Sample {
	i := 0
	for i+1 < len(ss) && !ss[i+1].T.After(from) {
		i++
	}
	ss = ss[i:]
	if len(ss) > maxSamples {
		thin := ss[:0:0]
		for j := range ss {
			if j%2 == 0 || j == len(ss)-1 {
				thin = append(thin, ss[j])
			}
		}
		ss = thin
	}
	return ss
}

// judge fits the trend of a series spanning at least window (at least three samples): the
// Theil–Sen slope on time (the median of the pairwise slopes, robust to a GC spike or one odd
// sample) times the window, and the change from the first sample to the last.
func judge(ss []Sample, now time.Time, window time.Duration) (trend, delta float64, ok bool) {
	if len(ss) < 3 || ss[0].T.After(now.Add(-window)) {
		return 0, 0, false
	}
	slopes := make([]float64, 0, len(ss)*(len(ss)-1)/2)
	for i := range ss {
		for j := i + 1; j < len(ss); j++ {
			if dt := ss[j].T.Sub(ss[i].T).Seconds(); dt > 0 {
				slopes = append(slopes, (ss[j].V-ss[i].V)/dt)
			}
		}
	}
	if len(slopes) == 0 {
		return 0, 0, false
	}
	slices.Sort(slopes)
	m := len(slopes) / 2
	slope := slopes[m]
	if len(slopes)%2 == 0 {
		slope = (slopes[m-1] + slopes[m]) / 2
	}
	return slope * window.Seconds(), ss[len(ss)-1].V - ss[0].V, true
}

func growthFinding(k seriesKey, s *series, p *proctab.Proc, trend float64, g *Growth, fds []proctab.FD) Finding {
	first, last := s.samples[0], s.samples[len(s.samples)-1]
	window := g.Window.Or(DefaultGrowthWindow)
	var what string
	if k.Kind == KindFDGrowth {
		what = fmt.Sprintf("open fds %.0f → %.0f in %s (trend %+.1f per %s, limit %g); now: %s",
			first.V, last.V, last.T.Sub(first.T).Round(time.Second), trend, window, g.Max, fdClasses(fds))
	} else {
		what = fmt.Sprintf("RssAnon %.1f MiB → %.1f MiB in %s (trend %+.1f MiB per %s, limit %g MiB)",
			first.V/(1<<20), last.V/(1<<20), last.T.Sub(first.T).Round(time.Second), trend/(1<<20), window, g.Max)
	}
	ev := detect.Evidence{PID: p.PID, StartTime: p.StartTime, Cmdline: s.cmdline, PGID: p.PGID, SID: p.SID,
		State: string(rune(p.State)), Class: k.Kind, Detail: what}
	if started := proctab.StartedAt(p.StartTime); !started.IsZero() {
		ev.Age = last.T.Sub(started).Round(time.Millisecond)
	}
	return Finding{
		Kind:     k.Kind,
		Key:      fmt.Sprintf("%s/%s/%d/%d", k.Kind, k.Process, k.PID, k.StartTime),
		Summary:  fmt.Sprintf("%s: %s pid %d: %s", k.Kind, k.Process, p.PID, what),
		Since:    first.T,
		Evidence: []detect.Evidence{ev},
		Samples:  slices.Clone(s.samples),
	}
}

// fdClasses counts fds by class ("pipe 200, socket 3, file 5").
func fdClasses(fds []proctab.FD) string {
	n := map[string]int{}
	for _, fd := range fds {
		n[fd.Class]++
	}
	var parts []string
	for _, c := range slices.Sorted(maps.Keys(n)) {
		parts = append(parts, fmt.Sprintf("%s %d", c, n[c]))
	}
	return strings.Join(parts, ", ")
}
