package detect

import (
	"strings"

	"github.com/proxyline/proxyline/internal/killtest/observe"
)

// DefaultCyclePrefix is the name prefix of the marks the runner records at the same phase point
// of every cycle ("cycle-1", "cycle-2", ...).
const DefaultCyclePrefix = "cycle-"

// cyclePoint is one process at one cycle mark.
type cyclePoint struct {
	mark   string
	proc   observe.MarkProc
	trough int64 // min RssAnon since the previous cycle mark (all marks in between included)
}

// perProcessCycles splits the cycle marks into one series per process (in mark order). The
// trough of a point is the minimum of the troughs of every mark since the previous cycle mark.
func perProcessCycles(marks []observe.Mark, prefix string) (series map[observe.Key][]cyclePoint, cycles int) {
	series = map[observe.Key][]cyclePoint{}
	troughs := map[observe.Key]int64{}
	for _, m := range marks {
		for _, mp := range m.Procs {
			if t, ok := troughs[mp.Key]; !ok || (mp.TroughRSSAnon > 0 && mp.TroughRSSAnon < t) {
				troughs[mp.Key] = mp.TroughRSSAnon
			}
		}
		if !strings.HasPrefix(m.Name, prefix) {
			continue
		}
		cycles++
		for _, mp := range m.Procs {
			if mp.State == 'Z' {
				continue
			}
			series[mp.Key] = append(series[mp.Key], cyclePoint{mark: m.Name, proc: mp, trough: troughs[mp.Key]})
		}
		clear(troughs)
	}
	return series, cycles
}
