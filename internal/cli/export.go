package cli

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/internal/pool"
	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/proxy"
)

// exportOptions are the flags of proxyline export.
type exportOptions struct {
	db      queue.DatabaseFlag // --database
	format  string
	output  string
	all     bool
	country string // comma-separated ISO codes; "" = every proxy
	sources bool   // print the per-source yield instead of proxies
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
	if err := o.db.Validate(); err != nil {
		errs = append(errs, err)
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
	o.db.Register(fs)
	fs.StringVar(&o.format, "format", check.FormatText, "output format: text, jsonl or csv")
	fs.StringVar(&o.output, "o", "", "write to this file instead of stdout")
	fs.BoolVar(&o.all, "all", false, "write every proxy with its outcome, not only live ones")
	fs.StringVar(&o.country, "country", "", "only proxies in these countries (ISO codes, comma-separated; geo from scrape --geoip-db --enqueue)")
	fs.BoolVar(&o.sources, "sources", false, "write each source's yield (alive, checked, named) instead of proxies")
	if err := parseOptions(fs, env, args, o); err != nil {
		return err
	}
	st, err := openStore(ctx, env, o.db, queue.ReadOnly)
	if err != nil {
		return err
	}
	defer st.Close()
	if o.sources {
		return exportYields(ctx, env, st, o.format)
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
	rw, err := check.NewResultWriter(out, o.format, o.all, "country", "city", "asn", "as_org")
	if err != nil {
		return usageError("%v", err)
	}
	n, err := writeEntries(ctx, st.DB(), rw, o)
	if err == nil {
		err = rw.Flush()
	}
	if err != nil {
		if file != nil { // rows are written as they are read: leave no half-written file
			file.Close()
			os.Remove(o.output)
		}
		return err
	}
	if file != nil {
		if err := file.Close(); err != nil {
			return fmt.Errorf("export: %w", err)
		}
	}
	env.Log.Info("exported", "proxies", n, "all", o.all)
	return nil
}

// writeEntries streams the pool's rows (all, or the live ones) with their geo fields, keeping
// only the countries listed in o.country (comma-separated ISO codes; "" keeps all), and returns
// how many it wrote.
func writeEntries(ctx context.Context, db pool.DB, rw *check.ResultWriter, o *exportOptions) (int, error) {
	var countries []string
	for _, c := range strings.Split(o.country, ",") {
		if c = strings.ToUpper(strings.TrimSpace(c)); c != "" {
			countries = append(countries, c)
		}
	}
	n := 0
	// The text format is the proxies alone: no other column, no geo.
	opts := pool.EachOptions{All: o.all, Countries: countries, ProxyOnly: o.format == check.FormatText}
	err := pool.Each(ctx, db, opts, func(e pool.Found) error {
		if opts.ProxyOnly {
			// The pool stores the proxy as proxy.Proxy.String() wrote it: written as is.
			n++
			if err := rw.WriteText(e.Proxy); err != nil {
				return fmt.Errorf("pool row: %w", err)
			}
			return nil
		}
		p, err := proxy.Parse(e.Proxy)
		if err != nil {
			return fmt.Errorf("pool row %s: %w", e.Addr, err)
		}
		g := e.Geo
		var asn any
		if g.ASN != 0 {
			asn = g.ASN
		}
		n++
		return rw.Write(e.Result(p), g.Country, g.City, asn, g.ASOrg)
	})
	return n, err
}

// exportYields writes each source's yield: a table (text), JSON lines or CSV.
func exportYields(ctx context.Context, env *Env, st *queue.Store, format string) error {
	ys, err := pool.SourceYields(ctx, st.DB())
	if err != nil {
		return err
	}
	switch format {
	case check.FormatJSONL:
		enc := json.NewEncoder(env.Stdout)
		for _, y := range ys {
			if err := enc.Encode(y); err != nil {
				return err
			}
		}
		return nil
	case check.FormatCSV:
		w := csv.NewWriter(env.Stdout)
		_ = w.Write([]string{"source", "alive", "checked", "candidates", "last_seen"})
		for _, y := range ys {
			_ = w.Write([]string{y.Source, strconv.FormatInt(y.Alive, 10), strconv.FormatInt(y.Checked, 10),
				strconv.FormatInt(y.Candidates, 10), y.LastSeen.Format(time.RFC3339)})
		}
		w.Flush()
		return w.Error()
	}
	tw := tabwriter.NewWriter(env.Stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "source\talive\tchecked\tnamed\tlast seen")
	for _, y := range ys {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\n", y.Source, y.Alive, y.Checked, y.Candidates, y.LastSeen.Format(time.RFC3339))
	}
	return tw.Flush()
}
