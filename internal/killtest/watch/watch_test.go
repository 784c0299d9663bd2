package watch

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/proxyline/proxyline/internal/proctab"
	"github.com/proxyline/proxyline/internal/serve"
)

// Each known-bad system must be caught, by the finding of its kind and nothing else.
func TestKnownBad(t *testing.T) {
	for _, tc := range []struct {
		file, mode, kind, class string
	}{
		{"bad-orphan.yaml", "orphan", KindOrphan, "re-parented"},
		{"bad-orphan-rule.yaml", "orphan", KindOrphan, "wrong-parent"},
		{"bad-fds.yaml", "fds", KindFDGrowth, KindFDGrowth},
		{"bad-rss.yaml", "rss", KindRSSGrowth, KindRSSGrowth},
	} {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			sys := startSystem(t, tc.mode)
			w, err := New(Config{File: load(t, tc.file, sys.run)})
			if err != nil {
				t.Fatal(err)
			}
			r := scanUntil(t, w, nil, func(r *Report) bool { return len(r.Findings) > 0 })
			for _, f := range r.Findings {
				if f.Kind != tc.kind {
					t.Errorf("finding of another kind: %s", f.Summary)
					continue
				}
				if len(f.Evidence) != 1 {
					t.Fatalf("evidence: %+v", f.Evidence)
				}
				ev := f.Evidence[0]
				if ev.Class != tc.class || !strings.HasSuffix(ev.Cmdline, sys.run) || ev.PID <= 1 || ev.StartTime == 0 {
					t.Errorf("evidence %+v: want class %s, a process of %s", ev, tc.class, sys.run)
				}
				if tc.kind == KindOrphan {
					checkOrphanEvidence(t, f, sys)
				} else if len(f.Samples) < 3 {
					t.Errorf("growth finding with %d samples", len(f.Samples))
				}
				t.Logf("caught: %s", f.Summary)
			}
			if len(r.Errors) > 0 {
				t.Errorf("errors: %v", r.Errors)
			}
		})
	}
}

// checkOrphanEvidence: the orphan is the checker, its parent now the reaper, orphaned for at
// least orphans.after.
func checkOrphanEvidence(t *testing.T, f Finding, sys *system) {
	t.Helper()
	ev := f.Evidence[0]
	if !strings.Contains(ev.Cmdline, "leaky checker") {
		t.Errorf("orphan %q is not the checker", ev.Cmdline)
	}
	if len(ev.Chain) == 0 || ev.Chain[0].PID != sys.reaper.Process.Pid || !strings.Contains(ev.Chain[0].Command, "leaky reaper") {
		t.Errorf("chain %+v: want the reaper (pid %d) first", ev.Chain, sys.reaper.Process.Pid)
	}
	if ev.WithoutParentMin < 300*time.Millisecond {
		t.Errorf("reported after %s, before orphans.after (300ms)", ev.WithoutParentMin)
	}
}

// The known-good system passes every check, and every check has judged it (members found,
// growth windows judged), so the pass is not a check that could not fail.
func TestKnownGood(t *testing.T) {
	t.Parallel()
	sys := startSystem(t, "clean")
	w, err := New(Config{File: load(t, "good.yaml", sys.run)})
	if err != nil {
		t.Fatal(err)
	}
	judgedScans := 0
	scanUntil(t, w, func(r *Report) {
		for _, f := range r.Findings {
			t.Errorf("finding on a clean system: %s", f.Summary)
		}
		if len(r.Errors) > 0 {
			t.Errorf("errors: %v", r.Errors)
		}
	}, func(r *Report) bool {
		if len(w.judged) == 4 { // worker and checker, fds and rss
			judgedScans++
		}
		return judgedScans >= 5 || t.Failed()
	})
	rule, cookie := 0, 0
	for _, m := range w.members {
		if m.rule != "" {
			rule++
		}
		if m.cookie {
			cookie++
		}
	}
	if rule != 1 || cookie != 2 {
		t.Errorf("members: %d by rule (want the checker), %d by cookie (want worker and checker)", rule, cookie)
	}
}

// --once: exit 1 with an orphan, after waiting out orphans.after within the one call; the alert
// command gets the evidence as JSON, once per finding until realert; exit 0 on a clean system.
func TestOnceAndAlert(t *testing.T) {
	t.Parallel()
	sys := startSystem(t, "orphan")
	w, err := New(Config{File: load(t, "bad-orphan.yaml", sys.run)})
	if err != nil {
		t.Fatal(err)
	}
	r := w.Once(context.Background())
	if r.Exit() != ExitFindings || len(r.Findings) != 1 {
		t.Fatalf("Once: exit %d, findings %+v, errors %v", r.Exit(), r.Findings, r.Errors)
	}
	dir := t.TempDir()
	argv, err := ParseCommand(leakyBin+" alert-sink '"+dir+"'", false)
	if err != nil {
		t.Fatal(err)
	}
	a := &Alerter{Argv: argv, Realert: time.Hour}
	now := time.Now()
	for i, want := range []int{1, 0, 0} {
		if sent, failed := a.Notify(context.Background(), "bad-orphan", "", r.Findings, now.Add(time.Duration(i)*time.Minute)); sent != want || failed != 0 {
			t.Fatalf("notify %d: sent %d failed %d, want %d sent", i, sent, failed, want)
		}
	}
	if sent, _ := a.Notify(context.Background(), "bad-orphan", "", r.Findings, now.Add(61*time.Minute)); sent != 1 {
		t.Fatalf("after realert: sent %d, want a reminder", sent)
	}
	alerts := readAlerts(t, dir)
	if len(alerts) != 2 || alerts[0].Finding.Key != r.Findings[0].Key || alerts[0].Finding.Evidence[0].PID != r.Findings[0].Evidence[0].PID {
		t.Fatalf("alerts: %+v", alerts)
	}
	if alerts[0].Repeat == alerts[1].Repeat {
		t.Errorf("one alert and one reminder expected: %+v", alerts)
	}
	clean := startSystem(t, "clean")
	w, err = New(Config{File: load(t, "bad-orphan.yaml", clean.run)})
	if err != nil {
		t.Fatal(err)
	}
	if r := w.Once(context.Background()); r.Exit() != ExitClean {
		t.Errorf("clean system: exit %d, %+v", r.Exit(), r)
	}
}

func readAlerts(t *testing.T, dir string) []Alert {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "alert-*.json"))
	var out []Alert
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var a Alert
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&a); err != nil {
			t.Fatalf("alert %s is not valid JSON: %v\n%s", f, err, b)
		}
		out = append(out, a)
	}
	if len(out) == 2 && out[0].Repeat {
		out[0], out[1] = out[1], out[0]
	}
	return out
}

// A running watch serves its metrics: parsed as Prometheus does, they show the orphan, the
// watched process and the scan.
func TestServiceMetrics(t *testing.T) {
	t.Parallel()
	sys := startSystem(t, "orphan")
	f := load(t, "bad-orphan.yaml", sys.run)
	f.Processes = []Watched{{Name: "worker", Match: `^\S*/leaky worker orphan ` + sys.run + `$`, FDs: &Growth{Max: 1000}}}
	w, err := New(Config{File: f})
	if err != nil {
		t.Fatal(err)
	}
	gate, err := serve.Options{Listen: "127.0.0.1:0"}.Gate(nil)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := NewService(ServiceConfig{Watcher: w, Gate: gate})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := svc.Stop(ctx); err != nil {
			t.Error(err)
		}
	}()
	deadline := time.Now().Add(60 * time.Second)
	for r := svc.Last(); r == nil || !hasKind(r, KindOrphan); r = svc.Last() {
		if time.Now().After(deadline) {
			t.Fatalf("no orphan within 60 s: %+v", r)
		}
		time.Sleep(50 * time.Millisecond)
	}
	fams := scrape(t, "http://"+svc.Addr()+"/metrics")
	gauge := func(name string, labels map[string]string) float64 {
		t.Helper()
		mf := fams[name]
		if mf == nil {
			t.Fatalf("no metric %s", name)
		}
	next:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue next
				}
			}
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
		t.Fatalf("%s: no series %v", name, labels)
		return 0
	}
	watch := map[string]string{"watch": "bad-orphan"}
	if v := gauge("killtest_watch_orphans", watch); v != 1 {
		t.Errorf("killtest_watch_orphans = %g, want 1", v)
	}
	if v := gauge("killtest_watch_orphans_found_total", watch); v != 1 {
		t.Errorf("killtest_watch_orphans_found_total = %g, want 1", v)
	}
	if v := gauge("killtest_watch_findings", map[string]string{"kind": KindOrphan}); v != 1 {
		t.Errorf("findings{kind=orphan} = %g", v)
	}
	worker := map[string]string{"process": "worker"}
	if v := gauge("killtest_watch_process_fds", worker); v < 3 {
		t.Errorf("worker fds = %g", v)
	}
	if v := gauge("killtest_watch_last_scan_timestamp_seconds", watch); time.Since(time.Unix(int64(v), 0)) > time.Hour {
		t.Errorf("last scan at %g", v)
	}
	if v := gauge("killtest_watch_scans_total", watch); v < 1 {
		t.Errorf("scans %g", v)
	}
	resp, err := http.Get("http://" + svc.Addr() + "/report")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rep Report
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil || !hasKind(&rep, KindOrphan) {
		t.Errorf("/report: %v %+v", err, rep)
	}
}

func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// A probe that cannot be read makes the report "cannot judge" (exit 2); a limit broken is a
// finding (exit 1); a finding wins over an error.
func TestProbesAndLimits(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, probes string
		exit         int
	}{
		{"clean", `{q: {command: {sh: "echo 2"}}}`, ExitClean},
		{"limit", `{q: {command: {sh: "echo 7"}}}`, ExitFindings},
		{"down", `{q: {command: {sh: "exit 3"}}}`, ExitUnknown},
		{"both", `{q: {command: {sh: "echo 7"}}, r: {command: {sh: "exit 3"}}}`, ExitFindings},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse("probes.yaml", []byte("name: p\nprobes: "+tc.probes+"\nlimits: [{probe: q, at_most: 5}]\n"))
			if err != nil {
				t.Fatal(err)
			}
			w, err := New(Config{File: f})
			if err != nil {
				t.Fatal(err)
			}
			r := w.Once(context.Background())
			if r.Exit() != tc.exit {
				t.Fatalf("exit %d, want %d: %+v", r.Exit(), tc.exit, r)
			}
			if tc.exit == ExitFindings && (r.Findings[0].Probe == nil || r.Findings[0].Probe.Value != 7) {
				t.Errorf("finding: %+v", r.Findings[0])
			}
		})
	}
}

// The state carries samples, candidates and alerts over to the next run, and belongs to one
// watch.
func TestState(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "state.json")
	f, err := Parse("s.yaml", []byte("name: s\nprobes: {q: {command: {sh: 'echo 1'}}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	w, _ := New(Config{File: f})
	w.series[seriesKey{Process: "x", Kind: KindFDGrowth, PID: 7, StartTime: 9}] = &series{cmdline: "x", samples: []Sample{{T: time.Unix(1, 0), V: 3}}}
	a := &Alerter{Argv: []string{"true"}, sent: map[string]time.Time{"k": time.Unix(5, 0).UTC()}}
	if err := w.State(a).Save(path); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v %v", fi.Mode(), err)
	}
	st, err := LoadState(path, "s")
	if err != nil {
		t.Fatal(err)
	}
	w2, _ := New(Config{File: f})
	a2 := &Alerter{Argv: []string{"true"}}
	w2.Restore(st, a2)
	if s := w2.series[seriesKey{Process: "x", Kind: KindFDGrowth, PID: 7, StartTime: 9}]; s == nil || s.samples[0].V != 3 {
		t.Errorf("series not restored: %+v", w2.series)
	}
	if !a2.sent["k"].Equal(time.Unix(5, 0)) {
		t.Errorf("alerts not restored: %v", a2.sent)
	}
	if _, err := LoadState(path, "other"); err == nil || !strings.Contains(err.Error(), `belongs to watch "s"`) {
		t.Errorf("another watch's state: %v", err)
	}
	if st, err := LoadState(filepath.Join(t.TempDir(), "none"), "s"); err != nil || len(st.Series) != 0 {
		t.Errorf("missing state: %v %+v", err, st)
	}
}

func TestJudge(t *testing.T) {
	t0 := time.Unix(1000, 0)
	mk := func(vs ...float64) []Sample {
		var ss []Sample
		for i, v := range vs {
			ss = append(ss, Sample{T: t0.Add(time.Duration(i) * time.Second), V: v})
		}
		return ss
	}
	for _, tc := range []struct {
		name   string
		ss     []Sample
		window time.Duration
		ok     bool
		trend  float64
	}{
		{"steady growth", mk(10, 20, 30, 40, 50), 4 * time.Second, true, 40},
		{"one spike is ignored", mk(10, 10, 90, 10, 10), 4 * time.Second, true, 0},
		{"window not yet spanned", mk(10, 20, 30), 5 * time.Second, false, 0},
		{"two samples", mk(10, 20), time.Second, false, 0},
	} {
		now := tc.ss[len(tc.ss)-1].T
		trend, _, ok := judge(tc.ss, now, tc.window)
		if ok != tc.ok || (ok && trend != tc.trend) {
			t.Errorf("%s: trend %g ok %v, want %g %v", tc.name, trend, ok, tc.trend, tc.ok)
		}
	}
	ss := trim(mk(1, 2, 3, 4, 5, 6), t0.Add(2500*time.Millisecond))
	if len(ss) != 4 || ss[0].V != 3 {
		t.Errorf("trim kept %+v: want the samples from the last one at or before the window's start", ss)
	}
}

// Membership by cgroup: the worker and its checker are born in a cgroup of their own, the reaper
// (the service manager) outside it; the orphaned checker is caught with its cgroup as evidence.
func TestCgroupMembership(t *testing.T) {
	t.Parallel()
	own, err := proctab.OwnCgroupDir()
	if err != nil {
		t.Skipf("skipped: no cgroup v2 here (%v); the cookie and rule tests cover the rest", err)
	}
	dir := filepath.Join(own, fmt.Sprintf("watchtest-%d-%d", os.Getpid(), runSeq.Add(1)))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("skipped: cgroup v2 not writable here (%v); the cookie and rule tests cover the rest", err)
	}
	t.Cleanup(func() { // after the system stopped (cleanups run last first)
		deadline := time.Now().Add(30 * time.Second)
		for os.Remove(dir) != nil && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond) // polling with a deadline: the kernel empties it
		}
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("cgroup %s still there after 30 s", dir)
		}
	})
	name, err := proctab.CgroupOfDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	sys := startSystemIn(t, "orphan", dir)
	f, err := Parse("cg.yaml", []byte(fmt.Sprintf("name: cg\ninterval: 100ms\nsystem:\n  cgroups: [%q]\n  roots: ['^\\S*/leaky worker ']\norphans: {after: 300ms}\n", name)))
	if err != nil {
		t.Fatal(err)
	}
	w, err := New(Config{File: f})
	if err != nil {
		t.Fatal(err)
	}
	r := scanUntil(t, w, nil, func(r *Report) bool { return len(r.Findings) > 0 })
	if len(r.Findings) != 1 || r.Findings[0].Kind != KindOrphan {
		t.Fatalf("findings: %+v", r.Findings)
	}
	ev := r.Findings[0].Evidence[0]
	if ev.Cgroup != name || ev.Class != "re-parented" || !strings.HasSuffix(ev.Cmdline, "leaky checker "+sys.run) {
		t.Errorf("evidence %+v: want the checker of %s in %s", ev, sys.run, name)
	}
	checkOrphanEvidence(t, r.Findings[0], sys)
}
