package detect

import (
	"cmp"
	"fmt"

	"github.com/proxyline/proxyline/internal/killtest/observe"
)

// MemoryOptions configures MemoryGrowth. Zero values mean the defaults.
type MemoryOptions struct {
	CyclePrefix string  // marks ending each cycle; default "cycle-"
	Warmup      int     // first cycles of each process ignored; default 2
	MinCycles   int     // cycles needed after warm-up to judge a process; default 3
	SlopeKiB    float64 // Theil–Sen slope of the troughs that fails, KiB per cycle; default 256
	// MinGrowthFraction and MinGrowthBytes: the trough growth last − first must also exceed
	// max(MinGrowthFraction × first, MinGrowthBytes). Defaults 0.10 and 16 MiB.
	MinGrowthFraction float64
	MinGrowthBytes    int64
}

func (o MemoryOptions) withDefaults() MemoryOptions {
	o.CyclePrefix = cmp.Or(o.CyclePrefix, DefaultCyclePrefix)
	o.Warmup = cmp.Or(o.Warmup, 2)
	o.MinCycles = cmp.Or(o.MinCycles, 3)
	o.SlopeKiB = cmp.Or(o.SlopeKiB, 256)
	o.MinGrowthFraction = cmp.Or(o.MinGrowthFraction, 0.10)
	o.MinGrowthBytes = cmp.Or(o.MinGrowthBytes, 16<<20)
	return o
}

// MemoryGrowth is the memory-leak detector. For every long-lived attributed process it takes
// the per-cycle trough of RssAnon (the minimum of the 1 Hz samples and marks within the cycle:
// the post-GC floor, not the sawtooth), drops the first Warmup cycles, and fails when the
// Theil–Sen slope exceeds SlopeKiB per cycle and the growth last − first exceeds
// max(MinGrowthFraction × first, MinGrowthBytes). Series carries the troughs for charts.
func MemoryGrowth(o *observe.Observer, opts MemoryOptions) Result {
	return judgeMemory(o.Marks(), opts.withDefaults())
}

func judgeMemory(marks []observe.Mark, opts MemoryOptions) Result {
	const check = "memory-growth"
	series, cycles := perProcessCycles(marks, opts.CyclePrefix)
	need := opts.Warmup + opts.MinCycles
	if cycles < need {
		return unknown(check, fmt.Sprintf("%d cycle mark(s) %q*, need %d (%d warm-up + %d)", cycles, opts.CyclePrefix, need, opts.Warmup, opts.MinCycles))
	}
	res := Result{Check: check}
	judged := 0
	for _, k := range sortedKeys(series) {
		pts := series[k]
		var ys []float64
		var labels []string
		for _, pt := range pts {
			if pt.trough <= 0 {
				continue
			}
			ys = append(ys, float64(pt.trough))
			labels = append(labels, pt.mark)
		}
		if len(ys) < need {
			continue
		}
		ys, labels = ys[opts.Warmup:], labels[opts.Warmup:]
		judged++
		grows, slope, growth := memoryGrows(ys, opts)
		s := Series{Name: fmt.Sprintf("RssAnon trough pid %d", k.PID), Unit: "bytes", Labels: labels, Values: ys}
		if !grows {
			continue
		}
		last := pts[len(pts)-1].proc
		res.Evidence = append(res.Evidence, Evidence{
			PID: k.PID, StartTime: k.StartTime, Cmdline: cmdline(last.Cmdline, last.Comm), State: string(rune(last.State)),
			Class: "memory-growth",
			Detail: fmt.Sprintf("RssAnon troughs grow %.0f KiB/cycle (Theil–Sen over %d cycles), %s → %s (+%s)",
				slope/1024, len(ys), mib(ys[0]), mib(ys[len(ys)-1]), mib(growth)),
		})
		res.Series = append(res.Series, s)
	}
	if judged == 0 {
		return unknown(check, fmt.Sprintf("no process lived through %d cycles with readable memory", need))
	}
	if len(res.Evidence) == 0 {
		return pass(check, fmt.Sprintf("%d long-lived process(es), no trough growth over %d cycles", judged, cycles-opts.Warmup))
	}
	res.Verdict = Fail
	res.Summary = fmt.Sprintf("%d of %d long-lived process(es) grow in memory", len(res.Evidence), judged)
	return res
}

// memoryGrows applies the decision rule to troughs (bytes, warm-up already dropped).
func memoryGrows(ys []float64, opts MemoryOptions) (grows bool, slope, growth float64) {
	if len(ys) < 2 {
		return false, 0, 0
	}
	slope, _ = TheilSen(append([]float64(nil), ys...))
	growth = ys[len(ys)-1] - ys[0]
	limit := max(opts.MinGrowthFraction*ys[0], float64(opts.MinGrowthBytes))
	return slope > opts.SlopeKiB*1024 && growth > limit, slope, growth
}

func mib(b float64) string { return fmt.Sprintf("%.1f MiB", b/(1<<20)) }
