package main

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Targets of the checker benchmark. The http judge's are issue A's; the https judge's CPU target
// is issue H2's, as a ratio to mubeng's CPU in the same run (the machine is shared: absolute
// numbers from different runs do not compare).
const (
	targetWall      = 11 * time.Second // proxyline, http judge
	targetCPU       = 3500 * time.Millisecond
	targetRSS       = 60 << 10 // KiB, proxyline, both judges
	targetMubengCPU = 0.5      // proxyline's CPU through the https judge / mubeng's
)

// table is the benchmark's result: one column per run.
type table struct {
	mix     counts
	conc    int
	timeout time.Duration
	reps    []report
}

// missed lists the targets a run missed, in words.
func (t table) missed() []string {
	var out []string
	mub := t.find(runMubeng)
	for _, r := range t.reps {
		if r.name == runMubeng {
			continue
		}
		add := func(bad bool, format string, args ...any) {
			if bad {
				out = append(out, r.name+" judge: "+fmt.Sprintf(format, args...))
			}
		}
		if r.name == runHTTP {
			add(r.wall > targetWall, "wall %.2fs > %.0fs", r.wall.Seconds(), targetWall.Seconds())
			add(r.cpu() > targetCPU, "cpu %.2fs > %.1fs", r.cpu().Seconds(), targetCPU.Seconds())
		}
		if r.name == runHTTPS && mub != nil {
			ratio := cpuRatio(r, *mub)
			add(ratio > targetMubengCPU, "cpu %.2f × mubeng's > %.2f", ratio, targetMubengCPU)
		}
		add(r.maxRSSKiB > targetRSS, "peak rss %.1f MB > %d MB", float64(r.maxRSSKiB)/1024, targetRSS>>10)
		add(r.falsePos != 0, "%d false positives", r.falsePos)
		add(r.falseNeg != 0, "%d false negatives", r.falseNeg)
		add(r.missing != 0, "%d proxies not checked", r.missing)
	}
	return out
}

func (t table) ok() bool { return len(t.missed()) == 0 }

func (t table) find(name string) *report {
	for i := range t.reps {
		if t.reps[i].name == name {
			return &t.reps[i]
		}
	}
	return nil
}

func cpuRatio(r, base report) float64 {
	if base.cpu() <= 0 {
		return 0
	}
	return r.cpu().Seconds() / base.cpu().Seconds()
}

// String renders the table.
func (t table) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "proxyline check benchmark: %d candidates (%d http, %d socks5, %d refused, %d blackhole), -c %d -t %s\n",
		t.mix.total(), t.mix.http, t.mix.socks5, t.mix.refused, t.mix.blackhole, t.conc, t.timeout)
	row := func(label string, cell func(r report) string, target string) {
		fmt.Fprintf(&b, "  %-17s", label)
		for _, r := range t.reps {
			fmt.Fprintf(&b, " %16s", cell(r))
		}
		fmt.Fprintf(&b, "  %s\n", target)
	}
	tool := func(r report) string {
		if r.name == runMubeng {
			return "mubeng"
		}
		return "proxyline"
	}
	judge := func(r report) string {
		if r.name == runHTTP {
			return "http judge"
		}
		return "https judge"
	}
	secs := func(d time.Duration) string { return fmt.Sprintf("%.2fs", d.Seconds()) }
	mub := t.find(runMubeng)
	row("", tool, "targets (proxyline)")
	row("", judge, "")
	row("wall time", func(r report) string { return secs(r.wall) }, fmt.Sprintf("http: <= %.0f s", targetWall.Seconds()))
	row("cpu (user+sys)", func(r report) string { return secs(r.cpu()) }, fmt.Sprintf("http: <= %.1f s", targetCPU.Seconds()))
	row("  user", func(r report) string { return secs(r.user) }, "")
	row("  sys", func(r report) string { return secs(r.sys) }, "")
	if mub != nil {
		row("cpu / mubeng's", func(r report) string { return fmt.Sprintf("%.2f", cpuRatio(r, *mub)) },
			fmt.Sprintf("https: <= %.2f", targetMubengCPU))
	}
	row("cpu per check", func(r report) string {
		return fmt.Sprintf("%.0f µs", float64(r.cpu().Microseconds())/float64(max(r.checked, 1)))
	}, "")
	row("peak rss", func(r report) string { return fmt.Sprintf("%.1fMB", float64(r.maxRSSKiB)/1024) },
		fmt.Sprintf("<= %d MB", targetRSS>>10))
	row("false positives", func(r report) string { return fmt.Sprint(r.falsePos) }, "0")
	row("false negatives", func(r report) string { return fmt.Sprint(r.falseNeg) }, "0")
	row("not checked", func(r report) string {
		if r.name == runMubeng {
			return "-" // a list of live proxies cannot say
		}
		return fmt.Sprint(r.missing)
	}, "0")
	row("alive", func(r report) string { return fmt.Sprint(r.alive) }, "")
	row("exit status", func(r report) string { return fmt.Sprint(r.exitCode) }, "")
	row("tls full/resumed", func(r report) string {
		if r.tls == nil {
			return "-"
		}
		return fmt.Sprintf("%d/%d", r.tls.full, r.tls.resumed)
	}, "at the judge")
	row("key exchange", func(r report) string {
		if r.tls == nil {
			return "-"
		}
		return r.tls.mainKX()
	}, "")
	if m := t.missed(); len(m) > 0 {
		fmt.Fprintf(&b, "  MISSED: %s\n", strings.Join(m, "; "))
	} else {
		fmt.Fprintf(&b, "  every target met\n")
	}
	return b.String()
}

// mainKX names the key exchange most handshakes used, with "+N" for the others.
func (s handshakeStats) mainKX() string {
	type kv struct {
		name string
		n    int
	}
	var all []kv
	total := 0
	for k, n := range s.kx {
		all = append(all, kv{k, n})
		total += n
	}
	if total == 0 {
		return "none"
	}
	sort.Slice(all, func(i, j int) bool { return all[i].n > all[j].n || all[i].n == all[j].n && all[i].name < all[j].name })
	if all[0].n == total {
		return all[0].name
	}
	return fmt.Sprintf("%s+%d", all[0].name, total-all[0].n)
}
