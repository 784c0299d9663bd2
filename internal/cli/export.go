package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/internal/pool"
	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/proxy"
)

// exportOptions are the flags of proxyline export.
type exportOptions struct {
	database string
	format   string
	output   string
	all      bool
}

// Validate checks the flags.
func (o *exportOptions) Validate() error {
	var errs []error
	if !slices.Contains(check.Formats(), o.format) {
		errs = append(errs, fmt.Errorf("--format %q: want one of %v", o.format, check.Formats()))
	}
	if o.all && o.format == check.FormatText {
		errs = append(errs, errors.New("--all needs --format jsonl or csv: text lists live proxies only"))
	}
	if err := (queue.Config{Database: o.database}).Validate(); err != nil {
		errs = append(errs, fmt.Errorf("--database: %w", err))
	}
	if len(errs) > 0 {
		return usageError("%w", errors.Join(errs...))
	}
	return nil
}

func exportCommand() command {
	return command{
		Name:    "export",
		Summary: "write the live proxies of the pool (or all, with their outcome)",
		Run:     runExport,
	}
}

func runExport(ctx context.Context, env *Env, args []string) error {
	o := &exportOptions{}
	fs := newFlagSet("export", "[flags]",
		"Writes the pool's live proxies, fastest first, in the same formats as 'proxyline check'.\n"+
			"With --all, every proxy of the pool with its last outcome.")
	databaseFlag(fs, &o.database)
	fs.StringVar(&o.format, "format", check.FormatText, "output format: text, jsonl or csv")
	fs.StringVar(&o.output, "o", "", "write to this file instead of stdout")
	fs.BoolVar(&o.all, "all", false, "write every proxy with its outcome, not only live ones")
	if err := parseOptions(fs, env, args, o); err != nil {
		return err
	}
	st, err := queue.Open(ctx, queue.Config{Database: o.database, Logger: env.Log})
	if err != nil {
		return err
	}
	defer st.Close()
	entries, err := pool.List(ctx, st.DB(), o.all)
	if err != nil {
		return err
	}
	var out io.Writer = env.Stdout
	var file *os.File
	if o.output != "" {
		if file, err = os.Create(o.output); err != nil {
			return fmt.Errorf("export: %w", err)
		}
		defer file.Close()
		out = file
	}
	rw, err := check.NewResultWriter(out, o.format, o.all)
	if err != nil {
		return usageError("%v", err)
	}
	for _, e := range entries {
		p, err := proxy.Parse(e.Proxy)
		if err != nil {
			return fmt.Errorf("pool row %s: %w", e.Addr, err)
		}
		if err := rw.Write(e.Result(p)); err != nil {
			return err
		}
	}
	if err := rw.Flush(); err != nil {
		return err
	}
	if file != nil {
		if err := file.Close(); err != nil {
			return fmt.Errorf("export: %w", err)
		}
	}
	env.Log.Info("exported", "proxies", len(entries), "all", o.all)
	return nil
}
