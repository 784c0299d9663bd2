package detect

import (
	"fmt"
	"math"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/killtest/observe"
	"github.com/proxyline/proxyline/internal/proctab"
)

func TestTheilSen(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name             string
		ys               []float64
		slope, intercept float64
	}{
		{"empty", nil, 0, 0},
		{"one", []float64{7}, 0, 7},
		{"two", []float64{1, 3}, 2, 1},
		{"flat", []float64{5, 5, 5, 5}, 0, 5},
		{"line", []float64{10, 11, 12, 13, 14}, 1, 10},
		{"falling", []float64{9, 7, 5, 3}, -2, 9},
		{"one outlier ignored", []float64{10, 10, 100, 10, 10, 10}, 0, 10},
		{"line with spike", []float64{0, 1, 2, 50, 4, 5, 6}, 1, 0},
		{"sawtooth flat", []float64{10, 12, 10, 12, 10, 12, 10}, 0, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, i := TheilSen(tt.ys)
			if math.Abs(s-tt.slope) > 1e-9 || math.Abs(i-tt.intercept) > 1e-9 {
				t.Fatalf("TheilSen(%v) = %v, %v; want %v, %v", tt.ys, s, i, tt.slope, tt.intercept)
			}
		})
	}
}

func TestMemoryGrows(t *testing.T) {
	t.Parallel()
	const mib = 1 << 20
	opts := MemoryOptions{}.withDefaults()
	ramp := func(start, step float64, n int) []float64 {
		ys := make([]float64, n)
		for i := range ys {
			ys[i] = start + step*float64(i)
		}
		return ys
	}
	tests := []struct {
		name string
		ys   []float64
		want bool
	}{
		{"flat", ramp(50*mib, 0, 10), false},
		{"steep and large", ramp(50*mib, 4*mib, 6), true},
		{"steep but small total", ramp(50*mib, 1*mib, 6), false},     // +5 MiB < 16 MiB
		{"large total but slow", ramp(50*mib, 100*1024, 200), false}, // 100 KiB/cycle < 256
		{"big process, under 10%", ramp(400*mib, 5*mib, 8), false},   // +35 MiB < 40 MiB
		{"big process, over 10%", ramp(400*mib, 8*mib, 8), true},     // +56 MiB > 40 MiB
		{"sawtooth", []float64{50 * mib, 90 * mib, 50 * mib, 90 * mib, 50 * mib}, false},
		{"one spike at end", append(ramp(50*mib, 0, 6), 90*mib), false}, // slope 0
		{"too short", []float64{50 * mib}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, slope, growth := memoryGrows(tt.ys, opts)
			if got != tt.want {
				t.Fatalf("memoryGrows = %v (slope %.0f B/cycle, growth %.0f B), want %v", got, slope, growth, tt.want)
			}
		})
	}
}

// marksOf builds cycle marks for one process from per-cycle fd lists and RssAnon troughs.
func marksOf(fds [][]proctab.FD, rss []int64) []observe.Mark {
	var ms []observe.Mark
	for i := range max(len(fds), len(rss)) {
		mp := observe.MarkProc{Key: observe.Key{PID: 100, StartTime: 1}, Comm: "w", State: 'S'}
		if i < len(fds) {
			mp.FDs = fds[i]
		}
		if i < len(rss) {
			mp.RSSAnon, mp.TroughRSSAnon = rss[i], rss[i]
		}
		ms = append(ms, observe.Mark{Name: fmt.Sprintf("cycle-%d", i+1), Procs: []observe.MarkProc{mp}})
	}
	return ms
}

// fdList returns fds 0-2 plus extra fds numbered from 3 with the given targets.
func fdList(targets ...string) []proctab.FD {
	fds := []proctab.FD{{Num: 0, Target: "/dev/null", Class: proctab.ClassDev}, {Num: 1, Target: "pipe:[1]", Class: proctab.ClassPipe}, {Num: 2, Target: "pipe:[1]", Class: proctab.ClassPipe}}
	for i, tg := range targets {
		fds = append(fds, proctab.FD{Num: 3 + i, Target: tg, Class: proctab.ClassOf(tg)})
	}
	return fds
}

func TestJudgeFDs(t *testing.T) {
	t.Parallel()
	opts := FDOptions{}.withDefaults()
	growing := func(n, per int, class string) [][]proctab.FD {
		var out [][]proctab.FD
		var targets []string
		for i := range n {
			for j := range per {
				targets = append(targets, fmt.Sprintf("%s:[%d]", class, 1000+i*10+j))
			}
			out = append(out, fdList(targets...))
		}
		return out
	}
	steady := func(n int) [][]proctab.FD {
		var out [][]proctab.FD
		for i := range n {
			out = append(out, fdList("anon_inode:[eventpoll]", fmt.Sprintf("socket:[%d]", 500+i))) // reconnects each cycle
		}
		return out
	}
	tests := []struct {
		name    string
		fds     [][]proctab.FD
		want    Verdict
		snippet string
	}{
		{"too few cycles", growing(4, 1, "pipe"), Unknown, "need 5"},
		{"steady", steady(8), Pass, ""},
		{"one pipe per cycle", growing(8, 1, "pipe"), Fail, "fds grow 1.00/cycle"},
		{"files, two per cycle", growing(6, 2, "/tmp/f"), Fail, "+fd "},
		{"slope 1 but last − first = 2", growing(5, 1, "/tmp/f"), Pass, ""},
		{"pidfd kept", append(steady(4), withPidfd(steady(8)[4:])...), Fail, "pidfds kept open"},
		{"pidfd closed next cycle", append(steady(5), append(withPidfd(steady(6)[5:]), steady(8)[6:]...)...), Pass, ""},
		{"one late connection is not a leak", append(steady(1)[:1:1], fdList(), fdList(), fdList("socket:[9]"), fdList("socket:[9]"), fdList("socket:[9]"), fdList("socket:[9]")), Pass, ""},
		{"warm-up growth ignored", append(growing(2, 5, "pipe"), growing(2, 5, "pipe")[1], growing(2, 5, "pipe")[1], growing(2, 5, "pipe")[1], growing(2, 5, "pipe")[1]), Pass, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := judgeFDs(marksOf(tt.fds, nil), opts)
			if r.Verdict != tt.want {
				t.Fatalf("verdict %s (%s), want %s; evidence %+v", r.Verdict, r.Summary, tt.want, r.Evidence)
			}
			text := r.Summary
			for _, e := range r.Evidence {
				text += " " + e.Detail
			}
			if !strings.Contains(text, tt.snippet) {
				t.Fatalf("result %q does not mention %q", text, tt.snippet)
			}
		})
	}
}

// withPidfd adds a pidfd as fd 9 to every cycle.
func withPidfd(cycles [][]proctab.FD) [][]proctab.FD {
	var out [][]proctab.FD
	for _, c := range cycles {
		out = append(out, append(append([]proctab.FD(nil), c...), proctab.FD{Num: 9, Target: "anon_inode:[pidfd]", Class: proctab.ClassPidfd}))
	}
	return out
}

func TestJudgeFDsThresholds(t *testing.T) {
	t.Parallel()
	// Files growing by one every other cycle: slope 0.5, delta 3 over 7 judged cycles → fail;
	// over 5 judged cycles delta is 2 → pass.
	mk := func(n int) [][]proctab.FD {
		var out [][]proctab.FD
		var targets []string
		for i := range n {
			if i%2 == 1 {
				targets = append(targets, fmt.Sprintf("/tmp/f%d", i))
			}
			out = append(out, fdList(targets...))
		}
		return out
	}
	opts := FDOptions{Warmup: 1}.withDefaults()
	if r := judgeFDs(marksOf(mk(8), nil), opts); r.Verdict != Fail {
		t.Errorf("8 cycles: %s (%s), want fail", r.Verdict, r.Summary)
	}
	if r := judgeFDs(marksOf(mk(5), nil), opts); r.Verdict != Pass {
		t.Errorf("5 cycles: %s (%s), want pass", r.Verdict, r.Summary)
	}
}

func TestJudgeMemoryTroughs(t *testing.T) {
	t.Parallel()
	const mib = 1 << 20
	// A fault mark between cycle marks with a lower value lowers that cycle's trough.
	marks := marksOf(nil, []int64{60 * mib, 60 * mib, 60 * mib, 70 * mib, 80 * mib, 90 * mib})
	r := judgeMemory(marks, MemoryOptions{}.withDefaults())
	if r.Verdict != Fail || len(r.Series) != 1 || r.Series[0].Values[0] != 60*mib {
		t.Fatalf("growing troughs: %s (%s) series %+v", r.Verdict, r.Summary, r.Series)
	}
	low := observe.Mark{Name: "fault-1", Procs: []observe.MarkProc{{Key: observe.Key{PID: 100, StartTime: 1}, TroughRSSAnon: 10 * mib, RSSAnon: 10 * mib}}}
	marks = append(marks[:5:5], low, marks[5])
	r = judgeMemory(marks, MemoryOptions{}.withDefaults())
	if r.Verdict != Pass || r.Series != nil {
		t.Fatalf("trough lowered by a mark inside the last cycle: %s (%s)", r.Verdict, r.Summary)
	}
	if r := judgeMemory(marks[:3], MemoryOptions{}.withDefaults()); r.Verdict != Unknown {
		t.Fatalf("3 cycles: %s, want unknown", r.Verdict)
	}
}

func TestJudgeZombies(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	parent := observe.Key{PID: 10, StartTime: 5}
	zs := []observe.Zombie{
		{Key: observe.Key{PID: 11, StartTime: 6}, Comm: "a", Parent: parent, ParentCmdline: []string{"worker"}, Since: t0, Until: t0.Add(1500 * time.Millisecond)},
		{Key: observe.Key{PID: 12, StartTime: 7}, Comm: "b", Parent: parent, Since: t0, Until: t0.Add(3 * time.Second)},
		{Key: observe.Key{PID: 13, StartTime: 8}, Comm: "brief", Parent: parent, Since: t0, Until: t0.Add(500 * time.Millisecond)},
		{Key: observe.Key{PID: 14, StartTime: 9}, Comm: "orphan", ParentIsHarness: true, Since: t0, Until: t0.Add(5 * time.Second)},
	}
	r := judgeZombies(zs, ZombieOptions{})
	if r.Verdict != Fail || len(r.Evidence) != 3 {
		t.Fatalf("judgeZombies = %s %+v: want 2 zombies + 1 culprit", r.Verdict, r.Evidence)
	}
	if c := r.Evidence[1]; c.Class != "culprit-parent" || c.PID != 10 || c.Cmdline != "worker" {
		t.Errorf("culprit = %+v", c)
	}
	if r := judgeZombies(zs[2:], ZombieOptions{}); r.Verdict != Pass {
		t.Errorf("brief and harness zombies: %s, want pass", r.Verdict)
	}
}

func TestJudgeStopped(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	proc := func(pid int, state byte, since time.Duration) observe.Process {
		return observe.Process{Key: observe.Key{PID: pid, StartTime: 1}, State: state, StateSince: now.Add(-since), FirstSeen: now.Add(-time.Minute), Wchan: "wchan_x"}
	}
	tests := []struct {
		name     string
		alive    []observe.Process
		killedAt time.Time
		want     Verdict
		waiting  bool
	}{
		{"running", []observe.Process{proc(1, 'R', 0), proc(2, 'S', time.Hour)}, time.Time{}, Pass, false},
		{"stopped", []observe.Process{proc(1, 'T', time.Second)}, time.Time{}, Fail, false},
		{"traced", []observe.Process{proc(1, 't', time.Second)}, time.Time{}, Fail, false},
		{"D long", []observe.Process{proc(1, 'D', 10*time.Second)}, time.Time{}, Fail, false},
		{"D short", []observe.Process{proc(1, 'D', time.Second)}, time.Time{}, Pass, true},
		{"D long but killed recently", []observe.Process{proc(1, 'D', time.Minute)}, now.Add(-2 * time.Second), Pass, true},
		{"D long after kill", []observe.Process{proc(1, 'D', time.Minute)}, now.Add(-6 * time.Second), Fail, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, waiting := judgeStopped(tt.alive, tt.killedAt, 5*time.Second, now)
			if r.Verdict != tt.want || waiting != tt.waiting {
				t.Fatalf("judgeStopped = %s (waiting %v), want %s (waiting %v): %+v", r.Verdict, waiting, tt.want, tt.waiting, r.Evidence)
			}
			if r.Verdict == Fail && tt.alive[0].State == 'D' && !strings.Contains(r.Evidence[0].Detail, "wchan_x") {
				t.Errorf("D evidence %q lacks the wchan", r.Evidence[0].Detail)
			}
		})
	}
}

func TestClassifyOrphan(t *testing.T) {
	t.Parallel()
	tree := treeOf{harness: 50, ownPGIDs: map[int]bool{60: true}, ownSIDs: map[int]bool{40: true}}
	base := observe.Process{Key: observe.Key{PID: 70, StartTime: 1}, PGID: 60, SID: 40, Cookie: true}
	with := func(f func(*observe.Process)) observe.Process { p := base; f(&p); return p }
	tests := []struct {
		name    string
		p       observe.Process
		caps    observe.Capabilities
		class   string
		snippet string
	}{
		{"component", with(func(p *observe.Process) { p.Own = true; p.PPID = 50 }), observe.Capabilities{}, OrphanComponent, "did not exit"},
		{"re-parented", with(func(p *observe.Process) { p.PPID = 50 }), observe.Capabilities{Subreaper: true}, OrphanReparented, "parent exited"},
		{"re-parented setsid", with(func(p *observe.Process) { p.PPID = 50; p.SID = 70; p.PGID = 70 }), observe.Capabilities{Subreaper: true}, OrphanReparented, "session of its own"},
		{"contained", with(func(p *observe.Process) { p.PPID = 99; p.InCgroup = true }), observe.Capabilities{Subreaper: true, Cgroup: true}, OrphanContained, "cgroup.kill"},
		{"escaped to init", with(func(p *observe.Process) { p.PPID = 1; p.PGID = 70 }), observe.Capabilities{}, OrphanEscaped, "process group of its own"},
		{"escaped elsewhere", with(func(p *observe.Process) { p.PPID = 99 }), observe.Capabilities{Subreaper: true, Cgroup: true}, OrphanEscaped, "parent pid 99"},
		{"descendant without cookie", with(func(p *observe.Process) { p.PPID = 99; p.Cookie = false; p.Attribution = observe.ByDescendant }), observe.Capabilities{Subreaper: true}, OrphanDescendant, "does not carry the run cookie"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			class, detail := classifyOrphan(tt.p, tree, tt.caps)
			if class != tt.class || !strings.Contains(detail, tt.snippet) {
				t.Fatalf("classifyOrphan = %q, %q; want %q mentioning %q", class, detail, tt.class, tt.snippet)
			}
		})
	}
}

func TestGracefulExit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		exits []Exit
		want  Verdict
	}{
		{"none", nil, Unknown},
		{"clean", []Exit{{Component: "w", Code: 0, Elapsed: time.Second, Deadline: 5 * time.Second}}, Pass},
		{"no deadline", []Exit{{Component: "w", Elapsed: time.Hour}}, Pass},
		{"escalated", []Exit{{Component: "w", Escalated: true, Code: 137, Signal: "SIGKILL"}}, Fail},
		{"late", []Exit{{Component: "w", Elapsed: 6 * time.Second, Deadline: 5 * time.Second}}, Fail},
		{"bad code", []Exit{{Component: "w", Code: 1}}, Fail},
		{"expected 143", []Exit{{Component: "w", Code: 143, Signal: "SIGTERM", ExpectedCodes: []int{0, 143}}}, Pass},
		{"signal not expected", []Exit{{Component: "w", Code: 143, Signal: "SIGTERM"}}, Fail},
		{"one of two bad", []Exit{{Component: "a"}, {Component: "b", Code: 2}}, Fail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if r := GracefulExit(tt.exits); r.Verdict != tt.want {
				t.Fatalf("GracefulExit = %s (%s), want %s", r.Verdict, r.Summary, tt.want)
			}
		})
	}
}

// TestOrphanRules: the orphan rules on synthetic bounds. The stop phase begins at t0+10s.
func TestOrphanRules(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	stop := at(10_000)
	orphan := func(parentAlive, parentDead, aliveAt, deadBy int) observe.Process {
		p := observe.Process{Key: observe.Key{PID: 42, StartTime: 7}, Comm: "mubeng", Cmdline: []string{"mubeng", "-c"},
			AliveAt: at(aliveAt), Orphaned: &observe.Orphaning{Parent: observe.Key{PID: 41, StartTime: 6}, ParentCommand: "celery worker",
				ParentAliveAt: at(parentAlive), ParentDeadBy: at(parentDead)}}
		if deadBy > 0 {
			p.DeadBy = at(deadBy)
		}
		return p
	}
	daemon := regexp.MustCompile(`^mubeng`)
	tests := []struct {
		name     string
		p        observe.Process
		opts     OrphanOptions
		want     Verdict
		contains string
	}{
		{"outlived its parent by a second, exited by itself", func() observe.Process {
			p := orphan(900, 1000, 2000, 2001)
			p.Status = &observe.ExitStatus{Code: 0}
			return p
		}(), OrphanOptions{}, Fail, "exited by itself with status 0"},
		{"parent-death signal: died with its parent", orphan(900, 1000, 995, 1001), OrphanOptions{}, Pass, "1 ended within 200 ms"},
		{"sampling stalled for longer than an orphan may live unseen", orphan(900, 1000, 995, 1001), OrphanOptions{}, Unknown,
			"took no sample of the process table for 2.5 s (from +3 s"},
		{"sampling delayed a little: pass, said", orphan(900, 1000, 995, 1001), OrphanOptions{}, Pass,
			"samples of the process table were up to 400 ms apart (from +3 s)"},
		// Without a run cgroup a zombie re-parented to the harness cannot be told from a helper
		// of the harness: an orphan of 300 ms could hide in a 400 ms stretch.
		{"sampling delayed a little, no run cgroup: cannot tell", orphan(900, 1000, 995, 1001), OrphanOptions{}, Unknown,
			"took no sample of the process table for 400 ms (from +3 s"},
		{"an orphan found is a failure whatever the sampling", func() observe.Process {
			p := orphan(900, 1000, 2000, 2001)
			p.Status = &observe.ExitStatus{Code: 0}
			return p
		}(), OrphanOptions{}, Fail, "exited by itself"},
		{"bounds straddle the bound: cannot tell (an orphan of 450 ms seen through 700 ms gaps)", orphan(700, 1000, 995, 1300), OrphanOptions{}, Unknown,
			"could not tell whether 1 process(es) outlived their parent by more than 200 ms: pid 42 `mubeng -c` ran between"},
		// A sample saw the parent alive 300 ms before the child died; the harness saw it alive
		// 5 ms before, when its fault signalled it: the child died within the bound.
		{"parent killed by a fault, seen alive right before the signal: settled", orphan(700, 1000, 995, 1001), OrphanOptions{
			Signals: []Signal{{At: at(997), AliveAt: at(990), Key: observe.Key{PID: 41, StartTime: 6}, Signal: syscall.SIGKILL, By: "fault kill"}}},
			Pass, "1 ended within 200 ms"},
		{"a signal to another process does not narrow", orphan(700, 1000, 995, 1001), OrphanOptions{
			Signals: []Signal{{At: at(997), AliveAt: at(990), Key: observe.Key{PID: 41, StartTime: 5}, Signal: syscall.SIGKILL, By: "fault kill"}}},
			Unknown, "could not tell"},
		{"lower bound just under the bound", orphan(990, 1000, 1150, 1160), OrphanOptions{}, Pass, "no process outlived"},
		{"stalled observer: cannot tell", orphan(0, 5000, 4000, 7000), OrphanOptions{}, Unknown, "could not tell whether 1 process(es)"},
		{"parent died in the stop phase: the grace applies", orphan(9990, 10_100, 11_000, 11_500), OrphanOptions{}, Pass, "no process outlived"},
		{"orphaned by a stop, outlived the grace, ended by a sibling's stop", func() observe.Process {
			p := orphan(9990, 10_100, 11_500, 11_510)
			p.Status = &observe.ExitStatus{Code: 0}
			return p
		}(), OrphanOptions{Grace: time.Second, Exits: []ComponentExit{
			{Component: "worker", Key: observe.Key{PID: 41, StartTime: 6}, StopAt: at(10_000), At: at(10_100), Why: "stopped at the end"},
			{Component: "server", StopAt: at(11_505), At: at(11_508), Why: "stopped at the end"},
		}}, Fail, "1 orphaned by a component's stop that outlived their parent by more than 1 s"},
		{"killed by a fault's signal", func() observe.Process {
			p := orphan(900, 1000, 3000, 3001)
			p.Status = &observe.ExitStatus{Signal: syscall.SIGKILL}
			return p
		}(), OrphanOptions{Signals: []Signal{{At: at(2999), Key: observe.Key{PID: 42, StartTime: 7}, Signal: syscall.SIGKILL, By: "fault reaper"}}},
			Fail, "was killed by SIGKILL from the harness (fault reaper)"},
		{"ended by the stop of a sibling", func() observe.Process {
			p := orphan(900, 1000, 10_010, 10_020)
			p.Status = &observe.ExitStatus{Code: 0}
			return p
		}(), OrphanOptions{Exits: []ComponentExit{
			{Component: "worker", Key: observe.Key{PID: 41, StartTime: 6}, At: at(1000), Why: "SIGKILLed by a fault"},
			{Component: "lab", StopAt: at(10_005), At: at(10_030), Why: "stopped at the end"},
		}}, Fail, "after component lab began to stop (stopped at the end)"},
		{"daemonized at start-up, allowed", orphan(900, 1000, 9000, 0), OrphanOptions{Allow: []*regexp.Regexp{daemon},
			Startups: []Window{{Name: "lab#1", From: at(800), To: at(1100)}}}, Pass, "allowed: pid 42 `mubeng -c` (daemonized while lab#1 started up)"},
		{"matches the allow-list, orphaned in a restart's start-up but born before it", orphan(900, 1000, 9000, 0), OrphanOptions{Allow: []*regexp.Regexp{daemon},
			Startups: []Window{{Name: "lab#2", From: at(800), To: at(1100)}}}, Fail, "its parent pid 41 `celery worker` died"},
		{"matches the allow-list, orphaned mid-run", orphan(5000, 5001, 9000, 0), OrphanOptions{Allow: []*regexp.Regexp{daemon},
			Startups: []Window{{Name: "lab#1", From: at(800), To: at(1100)}}}, Fail, "its parent pid 41 `celery worker` died"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := tt.opts
			opts.StopAt, opts.Origin = stop, t0
			caps := observe.Capabilities{Subreaper: true, Cgroup: true, Pidfd: true}
			// The observer's longest stretch without a sample, for the cases about it.
			if gap := map[string]time.Duration{
				"sampling stalled for longer than an orphan may live unseen": 2500 * time.Millisecond,
				"sampling delayed a little: pass, said":                      400 * time.Millisecond,
				"sampling delayed a little, no run cgroup: cannot tell":      400 * time.Millisecond,
				"an orphan found is a failure whatever the sampling":         1500 * time.Millisecond,
			}[tt.name]; gap > 0 {
				caps.MaxSampleGap, caps.MaxSampleGapAt = gap, at(3000)
			}
			caps.Cgroup = !strings.Contains(tt.name, "no run cgroup")
			born := at(850) // inside the start-up windows of the allow-list cases
			if strings.Contains(tt.name, "born before") {
				born = at(100)
			}
			j := orphanJudge{opts: opts.withDefaults(), now: at(12_000), caps: caps, born: func(observe.Process) time.Time { return born }}
			j.judge(tt.p, false)
			r := j.result(0)
			text := r.Summary
			for _, e := range r.Evidence {
				text += "\n" + e.Detail
			}
			if r.Verdict != tt.want || !strings.Contains(text, tt.contains) {
				t.Fatalf("verdict %s:\n%s\nwant %s with %q", r.Verdict, text, tt.want, tt.contains)
			}
			if r.Verdict == Fail && (r.Evidence[0].WithoutParentMin <= 200*time.Millisecond ||
				(r.Evidence[0].Class != OrphanDuringRun && r.Evidence[0].Class != OrphanAfterStop)) {
				t.Errorf("evidence %+v", r.Evidence[0])
			}
		})
	}
}
