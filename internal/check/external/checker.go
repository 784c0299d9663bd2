package external

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/internal/supervise"
	"github.com/proxyline/proxyline/proxy"
)

// Defaults of Checker's fields.
const (
	DefaultTimeout     = 10 * time.Second
	DefaultConcurrency = 50
	minDeadline        = 30 * time.Second
	keptOutput         = 4 << 10 // what is kept of stderr (with a PTY: of the terminal) for errors
	stderrShown        = 512     // how much of stderr an error message quotes
)

// Errors of CheckChunk, for errors.Is.
var (
	// ErrDeadline: the tool ran past its deadline and was killed with all it started.
	ErrDeadline = errors.New("killed at its deadline")
	// ErrFailed: the tool failed (exit status, signal) or reported something unusable (a report
	// over its bounds). The chunk's checking failed: a retry may work.
	ErrFailed = errors.New("failed")
	// ErrSetup (check.ErrSetup, the one sentinel for every checker): the tool could not be run
	// at all, through no fault of the tool or the chunk: the worker could not make the run's
	// directory or files, the program is not there (any more) or not executable, fork/exec
	// failed. A job should not be charged for it.
	ErrSetup = check.ErrSetup
)

// Runner runs one task to its end and cleans up after it, and makes the private directories of
// tasks; *supervise.Supervisor is the one to use (started, and stopped by its owner after the
// last CheckChunk).
type Runner interface {
	Run(ctx context.Context, spec supervise.Spec) (supervise.Result, error)
	MkdirTask(base string) (string, error)
}

var _ Runner = (*supervise.Supervisor)(nil)

// toolEnv lists the variables of the worker's environment that every tool gets, with LC_*. It
// also gets TMPDIR (its run's directory), the supervisor's cookie and the variables named in
// Checker.Env; nothing else (no PROXYLINE_* variable: the database URL and its password are
// among them).
var toolEnv = []string{"PATH", "HOME", "LANG", "TZ", "TERM"}

// Checker checks chunks of proxies with an external tool. Its fields are read by every
// CheckChunk and must not change meanwhile; CheckChunk may be called from several goroutines.
type Checker struct {
	// Template is the command line, for example "mubeng -f {in} --check -o {out} -t {timeout}".
	// It is split with shell quoting rules, but no shell is run (see parseTemplate). Required.
	Template string
	// Timeout is the per-proxy timeout given to the tool as {timeout} (a duration such as 10s,
	// 1.5s or 500ms), {timeout_s} (whole seconds, rounded up) and {timeout_ms}. Default 10 s.
	Timeout time.Duration
	// Deadline is the hard limit of one run; then the tool and all it started are killed.
	// Default: Timeout × (⌈chunk size / Concurrency⌉ + 2), and at least 30 s.
	Deadline time.Duration
	// Concurrency is given as {concurrency}. Default 50.
	Concurrency int
	// Judge is given as {judge}; required when the template uses {judge}.
	Judge string
	// Env names variables of the worker's environment to pass to the tool besides the fixed
	// few (PATH, HOME, LANG, LC_*, TZ, TERM). PROXYLINE_* and TMPDIR may not be named.
	Env []string
	// PTY runs the tool on a pseudo-terminal, for tools that insist on one (then stdout and
	// stderr are one stream). Default: stdin is /dev/null, stdout and stderr are pipes.
	PTY bool
	// TempDir is where each run's private directory (holding {in} and {out}, and the tool's
	// TMPDIR) is made, by the Runner. Default: the Runner's (os.TempDir()).
	TempDir string
	// Runner runs the tool; required.
	Runner Runner
	// Log receives warnings (proxies the tool reported that were not in the chunk, bad output
	// lines, processes the tool left behind). Default: discard.
	Log *slog.Logger
}

// Validate checks the configuration, including the template (but not whether its program
// exists: see ValidateTemplate).
func (c *Checker) Validate() error {
	_, err := c.template()
	return err
}

func (c *Checker) template() (*template, error) {
	switch {
	case c.Timeout < 0 || c.Deadline < 0:
		return nil, fmt.Errorf("exec checker: negative timeout %v or deadline %v", c.Timeout, c.Deadline)
	case c.Concurrency < 0:
		return nil, fmt.Errorf("exec checker: negative concurrency %d", c.Concurrency)
	case c.Runner == nil:
		return nil, errors.New("exec checker: no runner (supervisor)")
	}
	if err := validateEnv(c.Env); err != nil {
		return nil, err
	}
	t, err := parseTemplate(c.Template)
	if err != nil {
		return nil, err
	}
	if t.uses[phJudge] && c.Judge == "" {
		return nil, fmt.Errorf("%w %q: uses {judge} but no judge URL is set", ErrTemplate, c.Template)
	}
	return t, nil
}

// validateEnv checks the names of Checker.Env.
func validateEnv(names []string) error {
	for _, n := range names {
		switch {
		case !isName(n):
			return fmt.Errorf("exec checker: environment variable %q: not a variable name", n)
		case strings.HasPrefix(n, "PROXYLINE_"):
			return fmt.Errorf("exec checker: environment variable %s: proxyline's own variables (the database URL with its password among them) are never passed to an external tool", n)
		case n == "TMPDIR":
			return errors.New("exec checker: environment variable TMPDIR: the tool's TMPDIR is always its run's private directory")
		}
	}
	return nil
}

// environ is the tool's environment for a run whose directory is dir.
func (c *Checker) environ(dir string) []string {
	env := []string{"TMPDIR=" + dir}
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if name != "TMPDIR" && (slices.Contains(toolEnv, name) || strings.HasPrefix(name, "LC_") || slices.Contains(c.Env, name)) {
			env = append(env, kv)
		}
	}
	return env
}

// CheckChunk runs the tool once on chunk and returns the live proxies: those the tool reported
// that were in the chunk, in the tool's order, without duplicates. When a proxy of the chunk had
// no scheme and the tool reports one, the returned proxy has it. A proxy the tool reports that
// was never in the chunk is not returned, and is logged.
//
// The tool gets {in}, a file holding the chunk one URL per line (mubeng's format; a proxy without
// a scheme is written host:port), in a private directory (0700) that is also its TMPDIR. It
// writes live proxies to {out}, in any format proxy.Read reads; a missing {out} file means none
// are live. Without {out} in the template, live proxies are read from its stdout, where lines
// that are not proxies are ignored. Either is read as a stream and no further than a bound tied
// to the chunk's size (report): past it the chunk fails with ErrFailed.
//
// A tool that exits non-zero or is killed by a signal gives an error wrapping ErrFailed, with
// the start of its stderr; one that runs past the deadline is killed with everything it started
// and gives ErrDeadline; a canceled ctx kills it likewise and gives ctx's error; a run that could
// not start gives ErrSetup. The run's directory is removed on every path (and if the worker is
// killed first, by the next start-up sweep or `proxyline cleanup`).
func (c *Checker) CheckChunk(ctx context.Context, chunk []proxy.Proxy) ([]proxy.Proxy, error) {
	tmpl, err := c.template()
	if err != nil {
		return nil, err
	}
	if len(chunk) == 0 {
		return nil, nil
	}
	log := c.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir, err := c.Runner.MkdirTask(c.TempDir)
	if err != nil {
		return nil, fmt.Errorf("exec checker: %w: %w", ErrSetup, err)
	}
	defer func() {
		if err := os.RemoveAll(dir); err != nil {
			log.Warn("exec checker: remove run directory", "dir", dir, "err", err)
		}
	}()
	in := filepath.Join(dir, "in.txt")
	if err := writeChunk(in, chunk); err != nil {
		return nil, fmt.Errorf("exec checker: %w: %w", ErrSetup, err)
	}
	rep, name, err := c.run(ctx, tmpl, chunk, dir, log)
	if err != nil {
		return nil, err
	}
	if rep.badLines > 0 {
		log.Warn("exec checker wrote lines that are not proxies; ignored", "tool", name, "count", rep.badLines, "first", rep.firstBad)
	}
	if rep.unexpected > 0 {
		log.Warn("exec checker reported proxies that were not in its chunk; ignored", "tool", name, "count", rep.unexpected, "first", rep.firstUnexpected.Addr())
	}
	return rep.m.live, nil
}

// run runs the tool once in the run directory dir, whose in.txt holds the chunk, and reads its
// report. It returns the report and the tool's name.
func (c *Checker) run(ctx context.Context, tmpl *template, chunk []proxy.Proxy, dir string, log *slog.Logger) (*report, string, error) {
	out := filepath.Join(dir, "out.txt")
	deadline, values := c.values(len(chunk))
	values[phIn], values[phOut] = filepath.Join(dir, "in.txt"), out
	argv := tmpl.expand(values)
	name := filepath.Base(argv[0])

	rep := newReport(chunk)
	errText := &prefix{limit: keptOutput}
	// TaskDir: should this process die (SIGKILL) while the tool runs, the task's init removes the
	// directory, and the credentials in its chunk file, at once.
	spec := supervise.Spec{Path: argv[0], Args: argv[1:], Env: c.environ(dir), Stderr: errText,
		OutputLimit: math.MaxInt64, PTY: c.PTY, Timeout: deadline, TaskDir: dir}
	var feed *lineFeed
	if !tmpl.uses[phOut] {
		feed = newLineFeed(rep, name+" stdout")
		spec.Stdout = feed
	}
	if c.PTY { // one stream: keep its start for error messages too
		spec.Stdout = errText
		if feed != nil {
			spec.Stdout = io.MultiWriter(errText, feed)
		}
	}
	res, err := c.Runner.Run(ctx, spec)
	var readErr error
	if feed != nil {
		readErr = feed.Close()
	}
	if len(res.Escaped) > 0 {
		log.Warn("exec checker left processes behind; the supervisor ended them", "tool", name, "task", res.TaskID, "pids", res.Escaped)
	}
	if err := runError(name, res, err, deadline, errText.buf); err != nil {
		return nil, name, err
	}
	if tmpl.uses[phOut] {
		readErr = rep.scanFile(out, name+" {out}")
	}
	if readErr != nil {
		return nil, name, fmt.Errorf("exec checker %s: %w", name, readErr)
	}
	return rep, name, nil
}

// values returns the run's deadline and the placeholders' values but {in} and {out}.
func (c *Checker) values(n int) (time.Duration, map[string]string) {
	timeout := cmp.Or(c.Timeout, DefaultTimeout)
	conc := cmp.Or(c.Concurrency, DefaultConcurrency)
	deadline := c.Deadline
	if deadline == 0 {
		rounds := (n + conc - 1) / conc
		deadline = max(timeout*time.Duration(rounds+2), minDeadline)
	}
	values := timeoutValues(timeout)
	values[phConcurrency] = strconv.Itoa(conc)
	values[phJudge] = c.Judge
	return deadline, values
}

// runError turns what became of a run into CheckChunk's error, or nil when the tool exited 0.
func runError(name string, res supervise.Result, err error, deadline time.Duration, errText []byte) error {
	switch {
	case errors.Is(err, supervise.ErrStart):
		return fmt.Errorf("exec checker %s: %w: %w", name, ErrSetup, err)
	case err != nil:
		return fmt.Errorf("exec checker %s: %w", name, err)
	case res.TimedOut:
		return fmt.Errorf("exec checker %s: %w %v", name, ErrDeadline, deadline)
	case res.Signaled:
		return fmt.Errorf("exec checker %s: %w: killed by %s%s", name, ErrFailed, res.Signal, quoteStderr(errText))
	case res.ExitCode != 0:
		return fmt.Errorf("exec checker %s: %w: exit status %d%s", name, ErrFailed, res.ExitCode, quoteStderr(errText))
	}
	return nil
}

// writeChunk writes the chunk to path (mode 0600), one proxy per line in mubeng's format.
func writeChunk(path string, chunk []proxy.Proxy) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create chunk file: %w", err)
	}
	w := proxy.NewWriter(f, proxy.Text)
	for _, p := range chunk {
		if err := w.Write(p); err != nil {
			break
		}
	}
	err = errors.Join(w.Flush(), f.Close())
	if err != nil {
		return fmt.Errorf("write chunk file %s: %w", path, err)
	}
	return nil
}

// quoteStderr formats the start of the tool's error output for an error message.
func quoteStderr(b []byte) string {
	b = bytes.TrimSpace(stripANSI(b))
	if len(b) == 0 {
		return ""
	}
	if len(b) > stderrShown {
		b = append(b[:stderrShown:stderrShown], "…"...)
	}
	return ": " + strconv.Quote(string(b))
}
