package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/proxyline/proxyline/internal/backend"
	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/internal/secret"
	"github.com/proxyline/proxyline/proxy"
)

// enqueueOptions are the flags of proxyline enqueue.
type enqueueOptions struct {
	db      queue.DatabaseFlag // --database
	chunk   int
	format  string
	judge   check.JudgeConfig // its CA's certificates travel in the jobs
	timeout time.Duration
	file    string
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
	if o.judge.URL == "" {
		errs = append(errs, errors.New("--judge is required"))
	}
	// The same validation as check's: a job must never carry a judge no worker can use.
	if err := o.judge.Validate(); err != nil {
		errs = append(errs, err)
	}
	if o.timeout < 0 {
		errs = append(errs, fmt.Errorf("-t %s: must not be negative", o.timeout))
	}
	if o.file == "" {
		errs = append(errs, errors.New("a proxy list FILE is required ('-' for stdin)"))
	}
	if err := o.db.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return usageError("%w", errors.Join(errs...))
	}
	return nil
}

func (o *enqueueOptions) flags(fs *flag.FlagSet) {
	o.db.Register(fs)
	fs.IntVar(&o.chunk, "chunk", queue.DefaultChunk, "proxies per job")
	fs.StringVar(&o.format, "format", "auto", "list format: auto, text, jsonl or csv")
	o.judge.Register(fs)
	fs.DurationVar(&o.timeout, "t", 0, "timeout of one whole check (default: the worker's -t, else 10s)")
}

func enqueueCommand() command {
	return command{
		Name:    "enqueue",
		Summary: "put a proxy list on the queue as check jobs, all or nothing",
		Run: func(ctx context.Context, env *Env, args []string) error {
			o := &enqueueOptions{}
			fs := newFlagSet("enqueue", "[flags] FILE",
				"Reads the proxy list FILE ('-' for stdin) and inserts one check job per chunk, in one\n"+
					"transaction: a list with a bad line enqueues nothing and names every bad line (file:line).\n"+
					"Prints the number of jobs and proxies enqueued.")
			o.flags(fs)
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
			return runEnqueue(ctx, env, o)
		},
	}
}

// runEnqueue is the enqueue command once its flags are valid: the jobs' options (the CA read
// here), the list, then every chunk in one transaction.
func runEnqueue(ctx context.Context, env *Env, o *enqueueOptions) error {
	opts, err := backend.JobOptions(o.judge, o.timeout) // reads the CA file: workers elsewhere need not have it
	if err != nil {
		return usageError("%v", err)
	}
	lines, name, err := readJobList(env, o.file, o.format)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, env, o.db, queue.Migrate)
	if err != nil {
		return err
	}
	defer st.Close()
	start := time.Now()
	ids, err := st.EnqueueChecks(ctx, queue.Split(lines, name, o.chunk), opts)
	if err != nil {
		return fmt.Errorf("enqueue %s: %w", name, err)
	}
	env.Log.Info("enqueued", "file", name, "jobs", len(ids), "proxies", len(lines), "took", time.Since(start).Round(time.Millisecond))
	fmt.Fprintf(env.Stdout, "enqueued %d jobs (%d proxies)\n", len(ids), len(lines))
	return nil
}

// readJobList reads the list as lines for the jobs. All or nothing: any bad line is printed
// (file:line, without its password) and nothing is enqueued.
func readJobList(env *Env, file, formatName string) (lines []string, name string, err error) {
	format, _ := proxy.ParseFormat(formatName) // validated
	r, name, closeList, err := openList(env, file)
	if err != nil {
		return nil, "", err
	}
	defer closeList()
	ps, bad, err := proxy.Read(r, name, format)
	if err != nil {
		return nil, "", err
	}
	if len(bad) > 0 {
		for _, e := range bad {
			fmt.Fprintln(env.Stderr, secret.Redact(e.Error())) // the line number finds it; its password stays out
		}
		return nil, "", usageError("%s: %d bad lines; nothing enqueued", name, len(bad))
	}
	if len(ps) == 0 {
		return nil, "", usageError("%s: no proxies; nothing enqueued", name)
	}
	lines = make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return lines, name, nil
}
