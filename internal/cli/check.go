package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/proxyline/proxyline/internal/backend"
	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/internal/lab"
	"github.com/proxyline/proxyline/internal/secret"
	"github.com/proxyline/proxyline/proxy"
)

// checkOptions are the flags of proxyline check. The single-letter flags are mubeng's.
type checkOptions struct {
	File        string        // -f: proxy list, "-" for stdin
	Output      string        // -o: results file, "" for stdout
	Timeout     time.Duration // -t
	Concurrency int           // -c
	Judge       check.JudgeConfig
	Format      string
	All         bool
	Lab         bool
	Exec        backend.Exec // --exec and its flags; zero: in-process
	Chunk       int          // proxies per external checker run
}

func (o *checkOptions) flags(fs *flag.FlagSet) {
	fs.StringVar(&o.File, "f", "", "proxy list to check (text, jsonl or csv, detected); - reads stdin, which is never read otherwise")
	fs.StringVar(&o.Output, "o", "", "write results to this file instead of stdout")
	fs.DurationVar(&o.Timeout, "t", check.DefaultTimeout, "timeout of one whole check")
	fs.IntVar(&o.Concurrency, "c", backend.DefaultConcurrency, "checks at a time")
	o.Judge.Register(fs)
	fs.StringVar(&o.Format, "format", check.FormatText, "output format: text (live proxy URLs, mubeng's), jsonl or csv (with class, error, exit_ip, anonymity, timings)")
	fs.BoolVar(&o.All, "all", false, "also write dead proxies, with their class (jsonl and csv only)")
	fs.BoolVar(&o.Lab, "lab", false, "check an in-process lab's proxies against its judge and print a correctness summary versus its truth (nothing to install)")
	o.Exec.Register(fs)
	fs.IntVar(&o.Chunk, "chunk", backend.DefaultChunk, "proxies per --exec run")
}

// Validate reports the first bad flag, by name.
func (o *checkOptions) Validate() error {
	switch {
	case o.Lab && o.File != "":
		return errors.New("-f and --lab exclude each other: --lab checks the lab's own proxies")
	case o.Lab && (o.Judge.URL != "" || o.Judge.CAFile != ""):
		return errors.New("--judge and --judge-ca exclude --lab: --lab uses the lab's judge and CA")
	case !o.Lab && o.File == "":
		return errors.New("-f FILE (or -f - for stdin) is required, or --lab")
	case !o.Lab && o.Judge.URL == "" && o.Exec.Template == "":
		return errors.New("--judge URL is required (run 'proxyline judge' for one of your own)")
	case o.Chunk < 1:
		return fmt.Errorf("--chunk %d: must be at least 1", o.Chunk)
	case o.Timeout <= 0:
		return fmt.Errorf("-t %v: must be positive", o.Timeout)
	case o.Concurrency < 1:
		return fmt.Errorf("-c %d: must be at least 1", o.Concurrency)
	case !slices.Contains(check.Formats(), o.Format):
		return fmt.Errorf("--format %q: want one of %s", o.Format, strings.Join(check.Formats(), ", "))
	case o.All && o.Format == check.FormatText:
		return errors.New("--all needs --format jsonl or csv: the text format lists live proxies only")
	}
	return errors.Join(o.Judge.Validate(), o.Exec.Validate())
}

// backendConfig is the checker backend the options choose.
func (o *checkOptions) backendConfig(env *Env) backend.Config {
	return backend.Config{Judge: o.Judge, Timeout: o.Timeout, Concurrency: o.Concurrency, Exec: o.Exec, Chunk: o.Chunk,
		Name: "check", Log: env.Log}
}

func checkCommand() command {
	return command{
		Name:    "check",
		Summary: "check proxies against a judge: alive, class of failure, exit IP, anonymity",
		Run: func(ctx context.Context, env *Env, args []string) error {
			var o checkOptions
			fs := newFlagSet("check", "-f FILE --judge URL [flags] | --lab",
				"Checks every proxy of a list through a judge and writes the live ones (or all, with --all).\n"+
					"A bare host:port is probed for its protocol. Exit status: 0 at least one proxy alive, 1 none,\n"+
					"2 bad flags or no valid proxy in the input (bad lines are reported and skipped), 3 runtime error.\n"+
					"The first SIGINT/SIGTERM stops checking and writes what is done; a second exits at once.")
			o.flags(fs)
			if err := parseOptions(fs, env, args, &o); err != nil {
				return err
			}
			return runCheck(ctx, env, o)
		},
	}
}

// runCheck is the check command once its flags are valid: the proxies (a list, or the lab's),
// the backend, the output, the checks, then the report and the outcome.
//
// Shutdown order, the reverse of the start: the backend (runs of an external tool still going get
// their grace; a second signal cuts), then the lab (no check uses it any more). Their errors are
// joined into the command's.
func runCheck(ctx context.Context, env *Env, o checkOptions) (err error) {
	in, err := checkInputOf(ctx, env, &o)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, in.stop()) }()
	b, err := backend.Open(ctx, o.backendConfig(env))
	if errors.Is(err, backend.ErrConfig) {
		return usageError("%v", err)
	} else if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := stopContext(ctx, env)
		defer cancel()
		err = errors.Join(err, b.Stop(sctx))
	}()
	out, err := createOutput(env, o.Output)
	if err != nil {
		return err
	}
	defer out.close() // closed and checked below; this covers early returns
	rw, err := check.NewResultWriter(out, o.Format, o.All)
	if err != nil {
		return usageError("%v", err)
	}
	start := time.Now()
	run := newCheckRun(ctx, env, rw, len(in.proxies), in.truth != nil)
	backendErr, err := run.checkAll(ctx, b, in.proxies)
	if err != nil {
		return err
	}
	if err := out.commit(); err != nil {
		return err
	}
	return run.report(ctx, in, time.Since(start), lab.Conditions{Timeout: o.Timeout, LiveOnly: o.Exec.Template != ""}, backendErr)
}

// checkInput is what check checks: the proxies of the list, or with --lab those of a lab it
// starts (with the lab's judge and CA, and its truth to compare with).
type checkInput struct {
	proxies []proxy.Proxy
	truth   []lab.Truth  // with --lab
	stop    func() error // stops the lab
}

// checkInputOf reads the list, or starts the lab and points o's judge at it.
func checkInputOf(ctx context.Context, env *Env, o *checkOptions) (checkInput, error) {
	if !o.Lab {
		ps, err := readCandidates(env, o.File)
		return checkInput{proxies: ps, stop: func() error { return nil }}, err
	}
	l, err := lab.Start(ctx, lab.Config{Log: env.Log})
	if err != nil {
		return checkInput{}, fmt.Errorf("start lab: %w", err)
	}
	o.Judge.URL, o.Judge.CAPEM = l.JudgeURL(), string(l.CAPEM())
	env.Log.Info("lab started", "proxies", len(l.Candidates()), "judge", o.Judge.URL)
	// A lab has nothing to drain: it stops at once.
	stop := func() error { return l.Stop(context.WithoutCancel(ctx)) }
	return checkInput{proxies: l.Candidates(), truth: l.Truth(), stop: stop}, nil
}

// checkOutput is where results go: stdout, or the -o file.
type checkOutput struct {
	io.Writer
	file *os.File // nil for stdout
}

func createOutput(env *Env, path string) (*checkOutput, error) {
	if path == "" {
		return &checkOutput{Writer: env.Stdout}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create output: %w", err)
	}
	return &checkOutput{Writer: f, file: f}, nil
}

// commit closes the output file, reporting what closing it says.
func (c *checkOutput) commit() error {
	if c.file == nil {
		return nil
	}
	f := c.file
	c.file = nil
	if err := f.Close(); err != nil {
		return fmt.Errorf("close output %s: %w", f.Name(), err)
	}
	return nil
}

// close closes the output file if commit did not.
func (c *checkOutput) close() {
	if c.file != nil {
		c.file.Close()
	}
}

// checkRun is one run of the checks: it writes each result as it comes, counts them, draws the
// progress bar on a terminal, and keeps the outcomes the lab's truth is compared with.
type checkRun struct {
	env       *Env
	rw        *check.ResultWriter
	bar       *progressbar.ProgressBar // nil unless stderr is a terminal
	tty       bool
	debug     bool
	sum       *checkSummary
	total     int
	outcomes  []lab.Outcome // with --lab
	keep      bool          // keep outcomes
	writeErr  error
	abandoned atomic.Bool // set when a second signal makes runCheck return without waiting
}

func newCheckRun(ctx context.Context, env *Env, rw *check.ResultWriter, total int, keep bool) *checkRun {
	r := &checkRun{env: env, rw: rw, tty: isTerminal(env.Stderr), debug: env.Log.Enabled(ctx, slog.LevelDebug),
		sum: newCheckSummary(), total: total, keep: keep}
	if r.tty {
		r.bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(env.Stderr),
			progressbar.OptionSetDescription("checking"), progressbar.OptionShowCount(),
			progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish(),
			progressbar.OptionEnableColorCodes(true))
	}
	return r
}

// checkAll checks ps with b until done, or until the second signal (env.Force), which returns
// at once without waiting for checks in flight. backendErr is the backend's own failure (an
// external run that failed), reported after the results; err stops the command.
func (r *checkRun) checkAll(ctx context.Context, b *backend.Backend, ps []proxy.Proxy) (backendErr, err error) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		backendErr = b.CheckAll(ctx, ps, r.emit)
	}()
	select {
	case <-done:
	case <-r.env.Force:
		r.abandoned.Store(true)
		return nil, errors.New("interrupted twice: exiting without waiting for checks in flight")
	}
	if r.bar != nil {
		_ = r.bar.Finish()
	}
	if r.writeErr != nil {
		return nil, r.writeErr
	}
	return backendErr, r.rw.Flush()
}

// emit takes one result, from one goroutine at a time.
func (r *checkRun) emit(res check.Result) {
	if r.abandoned.Load() {
		return
	}
	r.sum.add(res)
	if r.debug {
		r.env.Log.Debug("checked", "proxy", res.Proxy.Redacted(), "class", res.Class, "err", res.Err,
			"exit_ip", res.ExitIP, "anonymity", res.Anonymity, "total", res.Total)
	}
	if r.keep {
		r.outcomes = append(r.outcomes, labOutcome(res))
	}
	if r.bar != nil {
		_ = r.bar.Add(1) // a progress bar that cannot draw is no reason to stop
	}
	if res.Class == check.Canceled || r.writeErr != nil {
		return
	}
	r.writeErr = r.rw.Write(res)
}

// report prints the summary (and with --lab the comparison with the truth) on stderr and
// decides the outcome: the backend's failure, else exit 1 when no proxy is alive.
func (r *checkRun) report(ctx context.Context, in checkInput, wall time.Duration, cond lab.Conditions, backendErr error) error {
	stderr := r.env.Stderr
	fmt.Fprintln(stderr, r.sum.line(r.total, wall, r.tty))
	if ctx.Err() != nil {
		fmt.Fprintf(stderr, "interrupted: %d of %d proxies not checked\n", r.total-r.sum.checked(), r.total)
	}
	if in.truth != nil {
		// An external checker says only which proxies work: only that is compared (cond).
		if err := lab.Compare(in.truth, r.outcomes, cond).Write(stderr); err != nil {
			return err
		}
	}
	if backendErr != nil {
		return backendErr
	}
	if r.sum.byClass[check.Alive] == 0 {
		return failure(errors.New("no live proxy"))
	}
	return nil
}

// readCandidates reads the proxy list, reporting each bad line with file:line on stderr. It is a
// usage error only when the input holds no valid proxy at all: one bad line must not cost the
// user the check of every good one.
func readCandidates(env *Env, file string) ([]proxy.Proxy, error) {
	input, name, closeList, err := openList(env, file)
	if err != nil {
		return nil, err
	}
	defer closeList()
	ps, bad, err := proxy.Read(input, name, proxy.Auto)
	for _, e := range bad {
		fmt.Fprintln(env.Stderr, secret.Redact(e.Error())) // the line number finds it; its password stays out
	}
	if err != nil {
		return nil, err
	}
	if len(ps) == 0 {
		if len(bad) > 0 {
			return nil, usageError("%s: no valid proxy (%d bad lines)", file, len(bad))
		}
		return nil, usageError("%s: no proxy in the input", file)
	}
	if len(bad) > 0 {
		env.Log.Warn("skipped bad lines", "file", file, "bad", len(bad), "valid", len(ps))
	}
	return ps, nil
}

// isTerminal reports whether w is a terminal (progress bars and colours only then).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// checkSummary counts results by class and by the scheme of live proxies.
type checkSummary struct {
	byClass  map[check.Class]int
	byScheme map[proxy.Scheme]int
}

func newCheckSummary() *checkSummary {
	return &checkSummary{byClass: map[check.Class]int{}, byScheme: map[proxy.Scheme]int{}}
}

func (s *checkSummary) add(r check.Result) {
	s.byClass[r.Class]++
	if r.OK() {
		s.byScheme[r.Proxy.Scheme]++
	}
}

// checked is the number of finished checks (canceled ones did not finish).
func (s *checkSummary) checked() int {
	n := 0
	for c, k := range s.byClass {
		if c != check.Canceled {
			n += k
		}
	}
	return n
}

// line is the summary: "checked 20000 of 20000 in 10.2s: 10000 alive (http 5000, socks5 5000);
// refused 5000, timeout 5000".
func (s *checkSummary) line(total int, wall time.Duration, colour bool) string {
	var b strings.Builder
	alive := fmt.Sprintf("%d alive", s.byClass[check.Alive])
	if colour {
		alive = "\x1b[32m" + alive + "\x1b[0m"
	}
	fmt.Fprintf(&b, "checked %d of %d in %.2fs: %s", s.checked(), total, wall.Seconds(), alive)
	if len(s.byScheme) > 0 {
		b.WriteString(" (" + joinCounts(s.byScheme) + ")")
	}
	dead := map[check.Class]int{}
	for c, k := range s.byClass {
		if c != check.Alive {
			dead[c] = k
		}
	}
	if len(dead) > 0 {
		b.WriteString("; " + joinCounts(dead))
	}
	return b.String()
}

// joinCounts formats a count map as "a 1, b 2", sorted by key.
func joinCounts[K ~string](m map[K]int) string {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	parts := make([]string, len(keys))
	for i, k := range keys {
		name := string(k)
		if name == "" {
			name = "unknown"
		}
		parts[i] = fmt.Sprintf("%s %d", name, m[k])
	}
	return strings.Join(parts, ", ")
}

// labOutcome is a result as the lab's truth is compared with it.
func labOutcome(r check.Result) lab.Outcome {
	return lab.Outcome{Proxy: r.Proxy, Class: string(r.Class), Err: r.Err, ExitIP: r.ExitIP, Anonymity: string(r.Anonymity)}
}
