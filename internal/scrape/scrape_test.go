package scrape

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/lab"
	"github.com/proxyline/proxyline/internal/scrape/fetch"
	"github.com/proxyline/proxyline/internal/testkit"
	"github.com/proxyline/proxyline/proxy"
)

// readOutDir reads proxies.json of an output directory.
func readOutDir(t *testing.T, dir string) []dirEntry {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "proxies.json"))
	if err != nil {
		t.Fatal(err)
	}
	var es []dirEntry
	if err := json.Unmarshal(b, &es); err != nil {
		t.Fatalf("proxies.json: %v\n%s", err, b)
	}
	return es
}

// TestLabSources scrapes every kind of lab proxy served in every format (sources.toml) and
// must find exactly the lab's candidates, each named by exactly its source, in every output.
func TestLabSources(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l := startLab(t, lab.Config{Sources: 10, Dir: filepath.Join(dir, "lab")})
	o := opts()
	o.Config = filepath.Join(dir, "lab", "sources.toml")
	o.Format = "jsonl"
	o.OutDir = filepath.Join(dir, "out")
	o.Output = filepath.Join(dir, "cands.jsonl")
	o.Stats = filepath.Join(dir, "stats.json")
	r := runScrape(t, context.Background(), o, nil)
	if r.err != nil {
		t.Fatalf("Run: %v\n%s", r.err, r.stderr)
	}
	want := map[proxy.Proxy]string{}
	for _, in := range l.Sources().Infos() {
		for _, p := range in.Proxies {
			want[p] = in.Name
		}
	}
	got, bad, err := proxy.ReadFile(o.Output, proxy.Auto)
	if err != nil || len(bad) > 0 || len(got) != len(want) {
		t.Fatalf("output: %d proxies (want %d), bad %v, %v", len(got), len(want), bad, err)
	}
	for _, p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("found %s, not a lab candidate", p)
		}
	}
	es := readOutDir(t, o.OutDir)
	for _, e := range es {
		p, _ := proxy.Parse(e.Proxy)
		if !slices.Equal(e.Sources, []string{want[p]}) {
			t.Errorf("%s: sources %v, want [%s]", e.Proxy, e.Sources, want[p])
		}
	}
	all, _ := os.ReadFile(filepath.Join(o.OutDir, "all.txt"))
	if len(es) != len(want) || strings.Count(string(all), "\n") != len(want) {
		t.Errorf("out dir: %d in proxies.json, %d lines in all.txt, want %d", len(es), strings.Count(string(all), "\n"), len(want))
	}
	var stats []SourceStats
	b, _ := os.ReadFile(o.Stats)
	if err := json.Unmarshal(b, &stats); err != nil || len(stats) != 10 {
		t.Fatalf("stats: %v %s", err, b)
	}
	for i, st := range stats {
		in := l.Sources().Infos()[i]
		if st.State != StateOK || st.New != len(in.Proxies) || st.Parsed != len(in.Proxies) || st.Bytes == 0 {
			t.Errorf("%s (%s): %+v, want ok with %d new", in.Name, in.Format, st, len(in.Proxies))
		}
	}
}

// TestDuplicatesAcrossSources: a proxy named by several sources is written once, with every
// source that named it; per-source statistics count it new once and duplicate after.
func TestDuplicatesAcrossSources(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := writeFile(t, dir, "a.txt", "1.2.3.4:80\n5.6.7.8:81\n1.2.3.4:80\n")
	b := writeFile(t, dir, "b.csv", "ip,port\n1.2.3.4,80\n9.9.9.9,99\n")
	o := opts()
	o.Args = []string{a, b}
	o.Fetchers = 1 // one at a time: a first
	o.Format = "jsonl"
	r := runScrape(t, context.Background(), o, nil)
	if r.err != nil {
		t.Fatal(r.err)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout.String()), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], fmt.Sprintf(`"sources":[%q,%q]`, a, b)) {
		t.Fatalf("output:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr.String(), "candidates") {
		t.Errorf("no summary: %s", r.stderr)
	}
}

// TestHostileSources: every hostile source ends with a clear per-source error within its
// limits, and the good source of the same run is still read.
func TestHostileSources(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l := startLab(t, lab.Config{HTTP: 4, Sources: 1, Dir: filepath.Join(dir, "lab")})
	hostile, _ := os.ReadFile(filepath.Join(dir, "lab", "hostile.toml"))
	// Only the slow drip needs a short deadline; the others get a long one, so that on a busy
	// machine (under -race) they end by their own limit, not by the clock.
	drip := "name = \"hostile-" + lab.HostileSlowDrip + "\"\n"
	if !strings.Contains(string(hostile), drip) {
		t.Fatalf("hostile.toml has no %q:\n%s", drip, hostile)
	}
	hostile = []byte(strings.Replace(string(hostile), drip, drip+"timeout = \"3s\"\n", 1))
	cfg := "timeout = \"60s\"\nmax_size = \"1MiB\"\nretries = 1\nbackoff = \"10ms\"\n" + string(hostile) +
		fmt.Sprintf("\n[[source]]\nname = \"good\"\nurl = %q\n", l.Sources().Infos()[0].URL)
	o := opts()
	o.Config = writeFile(t, dir, "c.toml", cfg)
	o.Stats = filepath.Join(dir, "stats.json")
	r := runScrape(t, context.Background(), o, nil)
	if r.err != nil {
		t.Fatalf("Run: %v\n%s", r.err, r.stderr)
	}
	var stats []SourceStats
	b, _ := os.ReadFile(o.Stats)
	_ = json.Unmarshal(b, &stats)
	want := map[string]string{
		"hostile-" + lab.HostileHuge:          "body larger than the size cap",
		"hostile-" + lab.HostileEndless:       "body larger than the size cap",
		"hostile-" + lab.HostileSlowDrip:      "timed out after 3s",
		"hostile-" + lab.HostileBinary:        "binary content, not a proxy list (content type application/octet-stream)",
		"hostile-" + lab.HostileMalformedJSON: "malformed JSON at byte",
		"hostile-" + lab.HostileRedirectLoop:  "redirect loop",
		"hostile-" + lab.HostileWrongType:     "(content type application/json)",
		"hostile-" + lab.HostileGzipBomb:      "body larger than the size cap",
		"hostile-" + lab.HostileStatus500:     "after 2 attempts: HTTP 500",
		"hostile-" + lab.HostileNotFound:      "HTTP 404",
	}
	for _, st := range stats {
		if st.Name == "good" {
			if st.State != StateOK || st.New != 4 {
				t.Errorf("good source: %+v", st)
			}
			continue
		}
		w, ok := want[st.Name]
		if !ok {
			t.Errorf("unexpected source %s", st.Name)
			continue
		}
		delete(want, st.Name)
		if st.State == StateOK || !strings.Contains(st.Err, w) {
			t.Errorf("%s: state %s, error %q; want an error with %q", st.Name, st.State, st.Err, w)
		}
		if !strings.Contains(r.stderr.String(), "source "+st.Name+": ") {
			t.Errorf("%s: error not reported on stderr", st.Name)
		}
	}
	for name := range want {
		t.Errorf("%s: no statistics", name)
	}
	if strings.TrimSpace(r.stdout.String()) == "" {
		t.Error("the good source's candidates were not written")
	}
}

// TestConditionalGet: a second scrape of unchanged sources gets 304s and the same candidates
// from the cache.
func TestConditionalGet(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l := startLab(t, lab.Config{HTTP: 5, SOCKS5Auth: 5, Sources: 5, Dir: filepath.Join(dir, "lab")})
	o := opts()
	o.NoCache = false
	o.CacheDir = filepath.Join(dir, "cache")
	o.Args = []string{}
	for _, in := range l.Sources().Infos() {
		o.Args = append(o.Args, in.URL)
	}
	first := runScrape(t, context.Background(), o, nil)
	second := runScrape(t, context.Background(), o, nil)
	if first.err != nil || second.err != nil {
		t.Fatal(first.err, second.err)
	}
	sorted := func(s string) []string {
		l := strings.Split(strings.TrimSpace(s), "\n")
		slices.Sort(l)
		return l
	}
	if a, b := sorted(first.stdout.String()), sorted(second.stdout.String()); !slices.Equal(a, b) || len(a) != 10 {
		t.Fatalf("first %q\nsecond %q", a, b)
	}
	for _, in := range l.Sources().Infos() {
		path := strings.TrimPrefix(in.URL, in.URL[:strings.Index(in.URL, "/s/")])
		if full, nm := l.Sources().Answers(path); full != 1 || nm != 1 {
			t.Errorf("%s: %d full answers, %d not modified; want 1 and 1", in.Name, full, nm)
		}
	}
	ents, _ := os.ReadDir(o.CacheDir)
	if len(ents) != 5 {
		t.Errorf("%d cache files, want 5", len(ents))
	}
	for _, e := range ents {
		if info, _ := e.Info(); info.Mode().Perm() != 0o600 {
			t.Errorf("cache file %s mode %v", e.Name(), info.Mode())
		}
	}
}

// TestCheckStreams: with --check the first live proxy is written while a source is still being
// fetched (a slow source stalls until the run is stopped), and the live proxies written are
// exactly the lab's live ones among the sources read, with per-source yields.
func TestCheckStreams(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l := startLab(t, lab.Config{HTTP: 6, SOCKS5: 6, Refused: 6, Bare: 6, Sources: 4, SlowSources: 1, Dir: filepath.Join(dir, "lab")})
	o := opts()
	o.Check, o.Judge.URL = true, l.JudgeURL()
	o.Config = filepath.Join(dir, "lab", "sources.toml")
	o.Stats = filepath.Join(dir, "stats.json")
	o.Grace = 100 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan result, 1)
	out := &testkit.Buffer{}
	go func() {
		r := result{stdout: out, stderr: &testkit.Buffer{}}
		r.err = Run(ctx, IO{Stdout: out, Stderr: r.stderr, Log: slogTo(r.stderr), Force: make(chan struct{})}, o)
		done <- r
	}()
	// The slow source never ends by itself: a live proxy on stdout now came before it did.
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "://") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(out.String(), "://") {
		t.Fatal("no live proxy while the slow source was still being fetched")
	}
	testkit.WaitFor(t, time.Minute, "three lines of output", func() bool { return strings.Count(out.String(), "\n") >= 3 })
	cancel()
	r := <-done
	if r.err != nil {
		t.Fatalf("Run after a stop: %v, want nil\n%s", r.err, r.stderr)
	}
	alive := map[string]bool{}
	for _, tr := range l.Truth() {
		if tr.Alive {
			alive[tr.Proxy.Addr()] = true
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		p, err := proxy.Parse(line)
		if err != nil || !alive[p.Addr()] || p.Scheme == proxy.Unknown {
			t.Errorf("written %q: not a live lab proxy with its scheme (%v)", line, err)
		}
	}
	var stats []SourceStats
	b, _ := os.ReadFile(o.Stats)
	_ = json.Unmarshal(b, &stats)
	if len(stats) != 4 || stats[3].State != StateAbandoned {
		t.Errorf("stats: %+v; want the slow source abandoned", stats)
	}
	live := 0
	for _, st := range stats {
		live += st.Live
	}
	if live != strings.Count(out.String(), "\n") {
		t.Errorf("per-source live %d, written %d", live, strings.Count(out.String(), "\n"))
	}
}

// TestCheckAll: --check over sources read completely writes every candidate's result once
// (--all), live ones exactly the lab's truth.
func TestCheckAll(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l := startLab(t, lab.Config{HTTP: 4, SOCKS5: 4, Refused: 4, Bare: 4, HTTPAuth: 2, Sources: 5, Dir: filepath.Join(dir, "lab")})
	o := opts()
	o.Check, o.Judge.URL, o.All, o.Format = true, l.JudgeURL(), true, "jsonl"
	o.Config = filepath.Join(dir, "lab", "sources.toml")
	o.Output = filepath.Join(dir, "out.jsonl")
	r := runScrape(t, context.Background(), o, nil)
	if r.err != nil {
		t.Fatalf("%v\n%s", r.err, r.stderr)
	}
	b, _ := os.ReadFile(o.Output)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != len(l.Candidates()) {
		t.Fatalf("%d results for %d candidates", len(lines), len(l.Candidates()))
	}
	for _, line := range lines {
		var rec struct {
			Sources []string `json:"sources"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil || len(rec.Sources) != 1 {
			t.Fatalf("%q: %v", line, err)
		}
	}
	outcomes, err := lab.ReadOutcomes(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if s := lab.Compare(l.Truth(), outcomes, lab.Conditions{Timeout: o.Timeout}); !s.OK() {
		var w strings.Builder
		_ = s.Write(&w)
		t.Errorf("results differ from the lab's truth:\n%s", w.String())
	}
}

// TestGracefulStop: the first signal stops fetching, abandons the slow sources after the grace
// period and writes, complete, everything the other sources gave; Run returns nil.
func TestGracefulStop(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l := startLab(t, lab.Config{HTTP: 10, SOCKS5: 10, Sources: 5, SlowSources: 2, Dir: filepath.Join(dir, "lab")})
	o := opts()
	o.Config = filepath.Join(dir, "lab", "sources.toml")
	o.OutDir = filepath.Join(dir, "out")
	o.Output = filepath.Join(dir, "c.txt")
	o.Grace = 200 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	stderr := &testkit.Buffer{}
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, IO{Stdout: &testkit.Buffer{}, Stderr: stderr, Log: slogTo(stderr), Force: make(chan struct{})}, o)
	}()
	testkit.WaitFor(t, time.Minute, "done=3 in the log", func() bool { return strings.Contains(stderr.String(), "done=3 ") })
	if _, err := os.Stat(o.Output); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("output visible before the end: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v\n%s", err, stderr)
	}
	want := 0
	for _, in := range l.Sources().Infos() {
		if !in.Slow {
			want += len(in.Proxies)
		}
	}
	ps, bad, err := proxy.ReadFile(o.Output, proxy.Auto)
	if err != nil || len(bad) > 0 || len(ps) != want {
		t.Errorf("%d candidates written, want %d (%v %v)", len(ps), want, bad, err)
	}
	if es := readOutDir(t, o.OutDir); len(es) != want {
		t.Errorf("proxies.json: %d, want %d", len(es), want)
	}
	if !strings.Contains(stderr.String(), "abandoned") || !strings.Contains(stderr.String(), "interrupted: wrote what was found") {
		t.Errorf("stderr does not say what was abandoned:\n%s", stderr)
	}
	assertNoTemp(t, dir)
}

// TestForce: the second signal returns at once and leaves no output file, not even a partial one.
func TestForce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	startLab(t, lab.Config{HTTP: 4, Sources: 2, SlowSources: 2, Dir: filepath.Join(dir, "lab")})
	o := opts()
	o.Config = filepath.Join(dir, "lab", "sources.toml")
	o.OutDir = filepath.Join(dir, "out")
	o.Output = filepath.Join(dir, "c.txt")
	force := make(chan struct{})
	stderr := &testkit.Buffer{}
	done := make(chan error, 1)
	go func() {
		done <- Run(context.Background(), IO{Stdout: &testkit.Buffer{}, Stderr: stderr, Log: slogTo(stderr), Force: force}, o)
	}()
	testkit.WaitFor(t, time.Minute, "the output directory", func() bool { return dirExists(o.OutDir) })
	close(force)
	if err := <-done; err == nil || !strings.Contains(err.Error(), "interrupted twice") {
		t.Fatalf("Run after force: %v", err)
	}
	ents, _ := os.ReadDir(o.OutDir)
	if len(ents) != 0 {
		t.Errorf("out dir after force: %v", ents)
	}
	if _, err := os.Stat(o.Output); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("output after force: %v", err)
	}
	assertNoTemp(t, dir)
}

// TestKnownBadNoAtomicWrite: the known-bad mode really writes in place (the output exists,
// partial, while the run goes on): what killtest's fixture relies on.
func TestKnownBadNoAtomicWrite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	startLab(t, lab.Config{HTTP: 4, Sources: 2, SlowSources: 2, Dir: filepath.Join(dir, "lab")})
	o := opts()
	o.Config = filepath.Join(dir, "lab", "sources.toml")
	o.OutDir = filepath.Join(dir, "out")
	o.KnownBad = BadNoAtomicWrite
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runScrape(t, ctx, o, nil).err }()
	testkit.WaitFor(t, time.Minute, "proxies.json", func() bool { _, err := os.Stat(filepath.Join(o.OutDir, "proxies.json")); return err == nil })
	cancel()
	<-done
}

func TestNothingFound(t *testing.T) {
	t.Parallel()
	o := opts()
	o.Args = []string{writeFile(t, t.TempDir(), "empty.txt", "no proxies here\n")}
	if r := runScrape(t, context.Background(), o, nil); !errors.Is(r.err, ErrNothing) {
		t.Errorf("Run: %v, want ErrNothing", r.err)
	}
	o.Args = []string{"/nonexistent/list.txt"}
	r := runScrape(t, context.Background(), o, nil)
	if !errors.Is(r.err, ErrNothing) || !strings.Contains(r.stderr.String(), "no such file") {
		t.Errorf("missing file: %v\n%s", r.err, r.stderr)
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	for _, mod := range []func(*Options){
		func(o *Options) { o.Format = "xml" },
		func(o *Options) { o.Check = true },
		func(o *Options) { o.Check, o.Enqueue, o.Judge.URL = true, true, "http://127.0.0.2:1/" },
		func(o *Options) { o.Config, o.Args = "c.toml", []string{"x"} },
		func(o *Options) { o.Upstream = "ftp://h:1" },
		func(o *Options) { o.KnownBad = "everything" },
		func(o *Options) { o.Config = "/nonexistent.toml" },
		func(o *Options) { o.Args, o.GeoIPDB = []string{"x"}, "/nonexistent.mmdb" },
	} {
		o := opts()
		mod(&o)
		if r := runScrape(t, context.Background(), o, nil); !errors.Is(r.err, ErrUsage) {
			t.Errorf("%+v: %v, want a usage error", o, r.err)
		}
	}
}

func TestPrintConfig(t *testing.T) {
	t.Parallel()
	r := runScrape(t, context.Background(), Options{PrintConfig: true}, nil)
	if r.err != nil || !strings.Contains(r.stdout.String(), "[[source]]") {
		t.Errorf("print config: %v %q", r.err, r.stdout)
	}
}

// TestUpstreamProxy: sources can be fetched through a proxy (a lab HTTP proxy here); the
// upstream's credentials never show.
func TestUpstreamProxy(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l := startLab(t, lab.Config{HTTPAuth: 2, Sources: 1, Dir: filepath.Join(dir, "lab")})
	up := l.Candidates()[0] // http://lab:pw-N@127.0.0.x:port
	o := opts()
	o.Upstream = up.String()
	o.Args = []string{l.Sources().Infos()[0].URL}
	r := runScrape(t, context.Background(), o, nil)
	if r.err != nil || strings.Count(r.stdout.String(), "\n") != 2 {
		t.Fatalf("through %s: %v\n%s", fetch.Mask(up.String()), r.err, r.stderr)
	}
	o.Upstream = strings.Replace(up.String(), up.Password, "wrong-secret", 1)
	r = runScrape(t, context.Background(), o, nil)
	if r.err == nil || strings.Contains(r.stderr.String(), "wrong-secret") {
		t.Errorf("bad upstream credentials: %v\n%s", r.err, r.stderr)
	}
}

// TestCheckExec: --check --exec streams the candidates to an external tool in chunks (here one
// that calls every proxy of its chunk live) under supervision, and writes what it reports with
// the sources.
func TestCheckExec(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l := startLab(t, lab.Config{HTTP: 5, SOCKS5: 5, Sources: 3, Dir: filepath.Join(dir, "lab")})
	o := opts()
	o.Config = filepath.Join(dir, "lab", "sources.toml")
	o.Check, o.Judge.URL, o.Chunk, o.Format = true, l.JudgeURL(), 4, "jsonl"
	o.Exec.Template = `sh -c 'cp "$1" "$2"' sh {in} {out}`
	o.OutDir = filepath.Join(dir, "out")
	r := runScrape(t, context.Background(), o, nil)
	if r.err != nil {
		t.Fatalf("%v\n%s", r.err, r.stderr)
	}
	if n := strings.Count(r.stdout.String(), `"class":"alive"`); n != 10 || strings.Count(r.stdout.String(), `"sources":["lab-`) != 10 {
		t.Errorf("%d alive of 10:\n%s", n, r.stdout)
	}
	if es := readOutDir(t, o.OutDir); len(es) != 10 {
		t.Errorf("proxies.json holds %d, want 10", len(es))
	}
}
