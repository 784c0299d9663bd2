package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/proxyline/proxyline/internal/backend"
	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/internal/checkrun"
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

// runCheck is the check command once its flags are valid: the proxies of the list (or with
// --lab none: checkrun starts the lab), then one run of checkrun, its errors mapped to exit codes.
func runCheck(ctx context.Context, env *Env, o checkOptions) error {
	var ps []proxy.Proxy
	if !o.Lab {
		var err error
		if ps, err = readCandidates(env, o.File); err != nil {
			return err
		}
	}
	rio := checkrun.IO{Stdout: env.Stdout, Stderr: env.Stderr, Log: env.Log, Force: env.Force, Terminal: isTerminal(env.Stderr),
		StopContext: func(ctx context.Context) (context.Context, context.CancelFunc) { return stopContext(ctx, env) }}
	err := checkrun.Run(ctx, rio, checkrun.Config{Proxies: ps, Lab: o.Lab, Output: o.Output, Format: o.Format, All: o.All,
		Backend: o.backendConfig(env)})
	switch {
	case errors.Is(err, checkrun.ErrUsage):
		return usageError("%v", err)
	case errors.Is(err, checkrun.ErrNoLive):
		return failure(err)
	}
	return err
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
