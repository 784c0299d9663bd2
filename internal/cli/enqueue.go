package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/proxy"
)

// jobCheckFlags are the check settings a check job carries (see queue.CheckOptions).
type jobCheckFlags struct {
	judge        string
	timeout      time.Duration
	judgeCA      string
	judgeStatus  int
	judgeKeyword string
}

func (f *jobCheckFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.judge, "judge", "", "judge URL the workers check through each proxy (required)")
	fs.DurationVar(&f.timeout, "t", 0, "timeout of one whole check (default: the worker's -t, else 10s)")
	fs.StringVar(&f.judgeCA, "judge-ca", "", "PEM file of a CA for an HTTPS judge; its content travels in the job")
	fs.IntVar(&f.judgeStatus, "judge-status", 0, "HTTP status the judge must answer with (default 200)")
	fs.StringVar(&f.judgeKeyword, "judge-keyword", "", "text the judge's page must contain (third-party judges)")
}

// options reads the CA file (so workers on other machines need not have it) and builds the job's
// options.
func (f *jobCheckFlags) options() (queue.CheckOptions, error) {
	o := queue.CheckOptions{Judge: f.judge, Timeout: f.timeout, ExpectStatus: f.judgeStatus, ExpectKeyword: f.judgeKeyword}
	if f.judgeCA != "" {
		b, err := os.ReadFile(f.judgeCA)
		if err != nil {
			return o, usageError("--judge-ca: %v", err)
		}
		if !strings.Contains(string(b), "-----BEGIN CERTIFICATE-----") {
			return o, usageError("--judge-ca %s: no PEM certificate in the file", f.judgeCA)
		}
		o.JudgeCAPEM = string(b)
	}
	if err := o.Validate(); err != nil {
		return o, usageError("%v", err)
	}
	return o, nil
}

// enqueueOptions are the flags of proxyline enqueue.
type enqueueOptions struct {
	database string
	chunk    int
	format   string
	check    jobCheckFlags
	file     string
}

// Validate checks the flags.
func (o *enqueueOptions) Validate() error {
	var errs []error
	if o.chunk < 1 || o.chunk > 100_000 {
		errs = append(errs, fmt.Errorf("--chunk %d: want 1-100000", o.chunk))
	}
	if _, err := proxy.ParseFormat(o.format); err != nil {
		errs = append(errs, fmt.Errorf("--format: %w", err))
	}
	if o.check.judge == "" {
		errs = append(errs, errors.New("--judge is required"))
	}
	if o.file == "" {
		errs = append(errs, errors.New("a proxy list FILE is required ('-' for stdin)"))
	}
	if err := (queue.Config{Database: o.database}).Validate(); err != nil {
		errs = append(errs, fmt.Errorf("--database: %w", err))
	}
	if len(errs) > 0 {
		return usageError("%w", errors.Join(errs...))
	}
	return nil
}

func enqueueCommand() command {
	return command{
		Name:    "enqueue",
		Summary: "put a proxy list on the queue as check jobs, all or nothing",
		Run:     runEnqueue,
	}
}

func runEnqueue(ctx context.Context, env *Env, args []string) error {
	o := &enqueueOptions{}
	fs := newFlagSet("enqueue", "[flags] FILE",
		"Reads the proxy list FILE ('-' for stdin) and inserts one check job per chunk, in one\n"+
			"transaction: a list with a bad line enqueues nothing and names every bad line (file:line).\n"+
			"Prints the number of jobs and proxies enqueued.")
	databaseFlag(fs, &o.database)
	fs.IntVar(&o.chunk, "chunk", queue.DefaultChunk, "proxies per job")
	fs.StringVar(&o.format, "format", "auto", "list format: auto, text, jsonl or csv")
	o.check.register(fs)
	if err := parseFlags(fs, env, args); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		return usageError("one FILE, got %d arguments", fs.NArg())
	}
	o.file = fs.Arg(0)
	if err := o.Validate(); err != nil {
		return err
	}
	opts, err := o.check.options()
	if err != nil {
		return err
	}
	format, _ := proxy.ParseFormat(o.format)
	var r io.Reader = env.Stdin
	name := "stdin"
	if o.file != "-" {
		f, err := os.Open(o.file)
		if err != nil {
			return usageError("%v", err)
		}
		defer f.Close()
		r, name = f, o.file
	}
	ps, bad, err := proxy.Read(r, name, format)
	if err != nil {
		return err
	}
	if len(bad) > 0 {
		for _, e := range bad {
			fmt.Fprintln(env.Stderr, e)
		}
		return usageError("%s: %d bad lines; nothing enqueued", name, len(bad))
	}
	if len(ps) == 0 {
		return usageError("%s: no proxies; nothing enqueued", name)
	}
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	st, err := queue.Open(ctx, queue.Config{Database: o.database, Logger: env.Log})
	if err != nil {
		return err
	}
	defer st.Close()
	start := time.Now()
	ids, err := st.EnqueueChecks(ctx, queue.Split(lines, name, o.chunk), opts)
	if err != nil {
		return fmt.Errorf("enqueue %s: %w", name, err)
	}
	env.Log.Info("enqueued", "file", name, "jobs", len(ids), "proxies", len(ps), "took", time.Since(start).Round(time.Millisecond))
	fmt.Fprintf(env.Stdout, "enqueued %d jobs (%d proxies)\n", len(ids), len(ps))
	return nil
}
