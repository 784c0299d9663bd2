package external

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/proxyline/proxyline/internal/supervise"
	"github.com/proxyline/proxyline/proxy"
)

// Defaults of Checker's fields.
const (
	DefaultTimeout     = 10 * time.Second
	DefaultConcurrency = 50
	minDeadline        = 30 * time.Second
	outputLimit        = 16 << 20 // what is kept of the tool's stdout and of its stderr
	stderrShown        = 512      // how much of stderr an error message quotes
)

// Errors of CheckChunk, for errors.Is.
var (
	ErrDeadline = errors.New("killed at its deadline")
	ErrFailed   = errors.New("failed")
)

// Runner runs one task to its end and cleans up after it; *supervise.Supervisor is the one to
// use (started, and stopped by its owner after the last CheckChunk).
type Runner interface {
	Run(ctx context.Context, spec supervise.Spec) (supervise.Result, error)
}

var _ Runner = (*supervise.Supervisor)(nil)

// Checker checks chunks of proxies with an external tool. Its fields are read by every
// CheckChunk and must not change meanwhile; CheckChunk may be called from several goroutines.
type Checker struct {
	// Template is the command line, for example "mubeng -f {in} --check -o {out} -t {timeout}".
	// It is split with shell quoting rules, but no shell is run (see parseTemplate). Required.
	Template string
	// Timeout is the per-proxy timeout given to the tool as {timeout} (seconds, rounded up) and
	// {timeout_ms}. Default 10 s.
	Timeout time.Duration
	// Deadline is the hard limit of one run; then the tool and all it started are killed.
	// Default: Timeout × (⌈chunk size / Concurrency⌉ + 2), and at least 30 s.
	Deadline time.Duration
	// Concurrency is given as {concurrency}. Default 50.
	Concurrency int
	// Judge is given as {judge}; required when the template uses {judge}.
	Judge string
	// PTY runs the tool on a pseudo-terminal, for tools that insist on one (then stdout and
	// stderr are one stream). Default: stdin is /dev/null, stdout and stderr are pipes.
	PTY bool
	// TempDir is where each run's directory (holding {in} and {out}) is made. Default
	// os.TempDir().
	TempDir string
	// Runner runs the tool; required.
	Runner Runner
	// Log receives warnings (proxies the tool reported that were not in the chunk, bad output
	// lines, processes the tool left behind). Default: discard.
	Log *slog.Logger
}

// Validate checks the configuration, including the template.
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
	t, err := parseTemplate(c.Template)
	if err != nil {
		return nil, err
	}
	if t.uses[phJudge] && c.Judge == "" {
		return nil, fmt.Errorf("%w %q: uses {judge} but no judge URL is set", ErrTemplate, c.Template)
	}
	return t, nil
}

// CheckChunk runs the tool once on chunk and returns the live proxies: those the tool reported
// that were in the chunk, in the tool's order, without duplicates. When a proxy of the chunk had
// no scheme and the tool reports one, the returned proxy has it. A proxy the tool reports that
// was never in the chunk is not returned, and is logged.
//
// The tool gets {in}, a file holding the chunk one URL per line (mubeng's format; a proxy without
// a scheme is written host:port). It writes live proxies to {out}, in any format proxy.Read
// reads; a missing {out} file means none are live. Without {out} in the template, live proxies
// are read from its stdout, where lines that are not proxies are ignored.
//
// A tool that exits non-zero or is killed by a signal gives an error wrapping ErrFailed, with
// the start of its stderr; one that runs past the deadline is killed with everything it started
// and gives ErrDeadline; a canceled ctx kills it likewise and gives ctx's error. The run's
// temporary directory is removed on every path.
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
	dir, err := os.MkdirTemp(c.TempDir, "proxyline-exec-")
	if err != nil {
		return nil, fmt.Errorf("exec checker: make run directory: %w", err)
	}
	defer func() {
		if err := os.RemoveAll(dir); err != nil {
			log.Warn("exec checker: remove run directory", "dir", dir, "err", err)
		}
	}()
	in, out := filepath.Join(dir, "in.txt"), filepath.Join(dir, "out.txt")
	if err := writeChunk(in, chunk); err != nil {
		return nil, err
	}

	timeout := cmp.Or(c.Timeout, DefaultTimeout)
	conc := cmp.Or(c.Concurrency, DefaultConcurrency)
	deadline := c.Deadline
	if deadline == 0 {
		rounds := (len(chunk) + conc - 1) / conc
		deadline = max(timeout*time.Duration(rounds+2), minDeadline)
	}
	argv := tmpl.expand(map[string]string{
		phIn:          in,
		phOut:         out,
		phTimeout:     strconv.FormatInt(int64(max((timeout+time.Second-1)/time.Second, 1)), 10),
		phTimeoutMS:   strconv.FormatInt(max(timeout.Milliseconds(), 1), 10),
		phConcurrency: strconv.Itoa(conc),
		phJudge:       c.Judge,
	})
	var stdout, stderr bytes.Buffer
	res, err := c.Runner.Run(ctx, supervise.Spec{
		Path:        argv[0],
		Args:        argv[1:],
		Stdout:      &stdout,
		Stderr:      &stderr,
		OutputLimit: outputLimit,
		PTY:         c.PTY,
		Timeout:     deadline,
	})
	name := filepath.Base(argv[0])
	if len(res.Escaped) > 0 {
		log.Warn("exec checker left processes behind; the supervisor ended them", "tool", name, "task", res.TaskID, "pids", res.Escaped)
	}
	if err != nil {
		return nil, fmt.Errorf("exec checker %s: %w", name, err)
	}
	errText := stderr.Bytes()
	if c.PTY {
		errText = stdout.Bytes()
	}
	switch {
	case res.TimedOut:
		return nil, fmt.Errorf("exec checker %s: %w %v", name, ErrDeadline, deadline)
	case res.Signaled:
		return nil, fmt.Errorf("exec checker %s: %w: killed by %s%s", name, ErrFailed, res.Signal, quoteStderr(errText))
	case res.ExitCode != 0:
		return nil, fmt.Errorf("exec checker %s: %w: exit status %d%s", name, ErrFailed, res.ExitCode, quoteStderr(errText))
	}

	var reported []proxy.Proxy
	if tmpl.uses[phOut] {
		var lineErrs []*proxy.LineError
		reported, lineErrs, err = proxy.ReadFile(out, proxy.Auto)
		if errors.Is(err, fs.ErrNotExist) {
			log.Debug("exec checker wrote no output file: no live proxy", "tool", name)
			err = nil
		}
		if err != nil {
			return nil, fmt.Errorf("exec checker %s: %w", name, err)
		}
		if len(lineErrs) > 0 {
			log.Warn("exec checker wrote lines that are not proxies", "tool", name, "count", len(lineErrs), "first", lineErrs[0].Error())
		}
	} else {
		if res.Truncated {
			return nil, fmt.Errorf("exec checker %s: %w: stdout longer than %d bytes", name, ErrFailed, outputLimit)
		}
		var lineErrs []*proxy.LineError
		reported, lineErrs, _ = proxy.Read(bytes.NewReader(stripANSI(stdout.Bytes())), name+" stdout", proxy.Auto)
		if len(lineErrs) > 0 {
			log.Debug("exec checker printed lines that are not proxies", "tool", name, "count", len(lineErrs))
		}
	}
	live, unexpected := match(chunk, reported)
	if len(unexpected) > 0 {
		log.Warn("exec checker reported proxies that were not in its chunk; ignored", "tool", name, "count", len(unexpected), "first", unexpected[0].String())
	}
	return live, nil
}

// writeChunk writes the chunk to path, one proxy per line in mubeng's format.
func writeChunk(path string, chunk []proxy.Proxy) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("exec checker: create chunk file: %w", err)
	}
	w := proxy.NewWriter(f, proxy.Text)
	for _, p := range chunk {
		if err := w.Write(p); err != nil {
			break
		}
	}
	err = errors.Join(w.Flush(), f.Close())
	if err != nil {
		return fmt.Errorf("exec checker: write chunk file %s: %w", path, err)
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
