package cli

import (
	"context"
	"crypto/x509"
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

	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/internal/lab"
	"github.com/proxyline/proxyline/proxy"
)

// checkOptions are the flags of proxyline check. The single-letter flags are mubeng's.
type checkOptions struct {
	File         string        // -f: proxy list, "-" for stdin
	Output       string        // -o: results file, "" for stdout
	Timeout      time.Duration // -t
	Concurrency  int           // -c
	Judge        string
	JudgeCA      string
	JudgeStatus  int
	JudgeKeyword string
	Format       string
	All          bool
	Lab          bool
	Exec         string // external checker template (internal/check/external); "" = in-process
	ExecPTY      bool
	Chunk        int    // proxies per external checker run
	Disable      string // supervision layers switched off
}

func (o *checkOptions) flags(fs *flag.FlagSet) {
	fs.StringVar(&o.File, "f", "", "proxy list to check (text, jsonl or csv, detected); - reads stdin, which is never read otherwise")
	fs.StringVar(&o.Output, "o", "", "write results to this file instead of stdout")
	fs.DurationVar(&o.Timeout, "t", check.DefaultTimeout, "timeout of one whole check")
	fs.IntVar(&o.Concurrency, "c", 100, "checks at a time")
	fs.StringVar(&o.Judge, "judge", "", "judge URL, http or https (proxyline judge, or a third-party one with --judge-keyword)")
	fs.StringVar(&o.JudgeCA, "judge-ca", "", "PEM file of CA certificates to verify an https judge (default: system roots)")
	fs.IntVar(&o.JudgeStatus, "judge-status", 200, "HTTP status the judge must answer with")
	fs.StringVar(&o.JudgeKeyword, "judge-keyword", "", "third-party judge: text the page must contain (proxyline's judge echoes a token instead)")
	fs.StringVar(&o.Format, "format", check.FormatText, "output format: text (live proxy URLs, mubeng's), jsonl or csv (with class, error, exit_ip, anonymity, timings)")
	fs.BoolVar(&o.All, "all", false, "also write dead proxies, with their class (jsonl and csv only)")
	fs.BoolVar(&o.Lab, "lab", false, "check an in-process lab's proxies against its judge and print a correctness summary versus its truth (nothing to install)")
	fs.StringVar(&o.Exec, "exec", "", "check with an external tool instead, run under supervision once per chunk, e.g. 'mubeng -f {in} --check -o {out} -t {timeout}' (placeholders: docs/check.md)")
	fs.BoolVar(&o.ExecPTY, "exec-pty", false, "run the --exec tool on a pseudo-terminal, for tools that need one (no 'script' wrapper needed)")
	fs.IntVar(&o.Chunk, "chunk", 1000, "proxies per --exec run")
	fs.StringVar(&o.Disable, "disable-layers", "", "switch supervision layers of --exec off, comma-separated (process_group, pdeathsig, cgroup, pid_namespace, subreaper, cookie, all)")
}

// Validate reports the first bad flag, by name.
func (o *checkOptions) Validate() error {
	switch {
	case o.Lab && o.File != "":
		return errors.New("-f and --lab exclude each other: --lab checks the lab's own proxies")
	case o.Lab && o.Judge != "":
		return errors.New("--judge and --lab exclude each other: --lab uses the lab's judge")
	case !o.Lab && o.File == "":
		return errors.New("-f FILE (or -f - for stdin) is required, or --lab")
	case !o.Lab && o.Judge == "" && o.Exec == "":
		return errors.New("--judge URL is required (run 'proxyline judge' for one of your own)")
	case o.Chunk < 1:
		return fmt.Errorf("--chunk %d: must be at least 1", o.Chunk)
	case o.ExecPTY && o.Exec == "":
		return errors.New("--exec-pty needs --exec")
	case o.Timeout <= 0:
		return fmt.Errorf("-t %v: must be positive", o.Timeout)
	case o.Concurrency < 1:
		return fmt.Errorf("-c %d: must be at least 1", o.Concurrency)
	case !slices.Contains(check.Formats(), o.Format):
		return fmt.Errorf("--format %q: want one of %s", o.Format, strings.Join(check.Formats(), ", "))
	case o.All && o.Format == check.FormatText:
		return errors.New("--all needs --format jsonl or csv: the text format lists live proxies only")
	case o.JudgeStatus < 100 || o.JudgeStatus > 599:
		return fmt.Errorf("--judge-status %d: not an HTTP status", o.JudgeStatus)
	}
	return nil
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

// runCheck is the check command once its flags are valid.
func runCheck(ctx context.Context, env *Env, o checkOptions) error {
	var (
		ps    []proxy.Proxy
		roots *x509.CertPool
		truth []lab.Truth
	)
	if o.Lab {
		l, err := lab.Start(ctx, lab.Config{Log: env.Log})
		if err != nil {
			return fmt.Errorf("start lab: %w", err)
		}
		defer l.Stop()
		ps, truth, roots, o.Judge = l.Candidates(), l.Truth(), l.CAPool(), l.JudgeURL()
		env.Log.Info("lab started", "proxies", len(ps), "judge", o.Judge)
	} else {
		var err error
		if ps, err = readCandidates(env, o.File); err != nil {
			return err
		}
		if o.JudgeCA != "" {
			if roots, err = readCAs(o.JudgeCA); err != nil {
				return usageError("--judge-ca: %v", err)
			}
		}
	}

	checkAll, stopBackend, err := checkBackend(ctx, env, o, roots)
	if err != nil {
		return err
	}
	defer stopBackend()

	out := env.Stdout
	if o.Output != "" {
		f, err := os.Create(o.Output)
		if err != nil {
			return fmt.Errorf("create output: %w", err)
		}
		defer f.Close() // closed explicitly below; this covers early returns
		out = f
	}
	rw, err := check.NewResultWriter(out, o.Format, o.All)
	if err != nil {
		return usageError("%v", err)
	}

	tty := isTerminal(env.Stderr)
	var bar *progressbar.ProgressBar
	if tty {
		bar = progressbar.NewOptions(len(ps), progressbar.OptionSetWriter(env.Stderr),
			progressbar.OptionSetDescription("checking"), progressbar.OptionShowCount(),
			progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish(),
			progressbar.OptionEnableColorCodes(true))
	}

	start := time.Now()
	sum := newCheckSummary()
	results := make(map[string]check.Result, len(truth))
	var writeErr, backendErr error
	var abandoned atomic.Bool // set when a second signal makes us return without waiting
	debug := env.Log.Enabled(ctx, slog.LevelDebug)
	done := make(chan struct{})
	go func() {
		defer close(done)
		backendErr = checkAll(ctx, ps, func(r check.Result) {
			if abandoned.Load() {
				return
			}
			sum.add(r)
			if debug {
				env.Log.Debug("checked", "proxy", r.Proxy.String(), "class", r.Class, "err", r.Err,
					"exit_ip", r.ExitIP, "anonymity", r.Anonymity, "total", r.Total)
			}
			if truth != nil {
				results[r.Proxy.Addr()] = r
			}
			if bar != nil {
				_ = bar.Add(1) // a progress bar that cannot draw is no reason to stop
			}
			if r.Class == check.Canceled || writeErr != nil {
				return
			}
			writeErr = rw.Write(r)
		})
	}()
	select {
	case <-done:
	case <-env.Force:
		abandoned.Store(true)
		return errors.New("interrupted twice: exiting without waiting for checks in flight")
	}
	if bar != nil {
		_ = bar.Finish()
	}
	if writeErr != nil {
		return writeErr
	}
	if err := rw.Flush(); err != nil {
		return err
	}
	if f, ok := out.(*os.File); ok && o.Output != "" {
		if err := f.Close(); err != nil {
			return fmt.Errorf("close output %s: %w", o.Output, err)
		}
	}

	fmt.Fprintln(env.Stderr, sum.line(len(ps), time.Since(start), tty))
	if ctx.Err() != nil {
		fmt.Fprintf(env.Stderr, "interrupted: %d of %d proxies not checked\n", len(ps)-sum.checked(), len(ps))
	}
	if truth != nil {
		lv := compareTruth(truth, results, o.Timeout, o.Exec != "")
		lv.write(env.Stderr)
	}
	if backendErr != nil {
		return backendErr
	}
	if sum.byClass[check.Alive] == 0 {
		return failure(errors.New("no live proxy"))
	}
	return nil
}

// readCandidates reads the proxy list, reporting each bad line with file:line on stderr. It is a
// usage error only when the input holds no valid proxy at all: one bad line must not cost the
// user the check of every good one.
func readCandidates(env *Env, file string) ([]proxy.Proxy, error) {
	var (
		ps    []proxy.Proxy
		bad   []*proxy.LineError
		err   error
		input io.Reader
	)
	if file == "-" {
		input = env.Stdin
		if input == nil {
			return nil, usageError("-f -: no stdin")
		}
		ps, bad, err = proxy.Read(input, "stdin", proxy.Auto)
	} else {
		ps, bad, err = proxy.ReadFile(file, proxy.Auto)
	}
	for _, e := range bad {
		fmt.Fprintf(env.Stderr, "%v\n", e)
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

// readCAs reads a PEM file of CA certificates.
func readCAs(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s: no PEM certificate", path)
	}
	return pool, nil
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

// labVerdict compares results with the lab's truth.
type labVerdict struct {
	total, correct, falsePos, falseNeg, missing int
	wrong                                       []string // one line per incorrect result
}

// compareTruth checks every result against what a correct checker reports. A slow proxy is
// expected to time out when the timeout does not exceed its delay. With liveOnly (an external
// checker, which says only which proxies work) just alive versus not alive is compared.
func compareTruth(truth []lab.Truth, results map[string]check.Result, timeout time.Duration, liveOnly bool) labVerdict {
	var v labVerdict
	for _, t := range truth {
		v.total++
		r, ok := results[t.Proxy.Addr()]
		if !ok || r.Class == check.Canceled {
			v.missing++
			continue
		}
		wantAlive, wantClass := t.Alive, t.Class
		if t.Delay > 0 && timeout <= t.Delay {
			wantAlive, wantClass = false, lab.ClassTimeout
		}
		var why string
		switch {
		case r.OK() && !wantAlive:
			v.falsePos++
			why = "false positive"
		case !r.OK() && wantAlive:
			v.falseNeg++
			why = "false negative"
		case liveOnly:
		case string(r.Class) != wantClass:
			why = fmt.Sprintf("class %s, want %s", r.Class, wantClass)
		case r.OK() && string(r.Anonymity) != t.Anonymity:
			why = fmt.Sprintf("anonymity %s, want %s", r.Anonymity, t.Anonymity)
		case r.OK() && r.ExitIP != t.ExitIP:
			why = fmt.Sprintf("exit IP %s, want %s", r.ExitIP, t.ExitIP)
		case r.OK() && r.Proxy.Scheme != t.Scheme:
			why = fmt.Sprintf("scheme %s, want %s", r.Proxy.Scheme, t.Scheme)
		}
		if why == "" {
			v.correct++
			continue
		}
		v.wrong = append(v.wrong, fmt.Sprintf("  %s (%s): %s; got %s %q", t.Proxy, t.Kind, why, r.Class, r.Err))
	}
	return v
}

func (v labVerdict) write(w io.Writer) {
	fmt.Fprintf(w, "lab: %d proxies, %d correct, %d false positives, %d false negatives, %d other errors, %d not checked\n",
		v.total, v.correct, v.falsePos, v.falseNeg, len(v.wrong)-v.falsePos-v.falseNeg, v.missing)
	for _, s := range v.wrong {
		fmt.Fprintln(w, s)
	}
}
