package cli

import (
	"context"
	"errors"
	"flag"

	"time"

	"github.com/proxyline/proxyline/internal/backend"
	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/internal/scrape"
)

// scrapeFlags binds the flags of proxyline scrape to scrape.Options. The judge and --exec flags
// are check's (same names, defaults and meaning).
func scrapeFlags(fs *flag.FlagSet, o *scrape.Options) {
	fs.StringVar(&o.Config, "config", "", "TOML file of sources and settings (docs/scrape.md; --print-config shows every key)")
	fs.BoolVar(&o.PrintConfig, "print-config", false, "print the documented default configuration, with the default public sources, and exit")
	fs.StringVar(&o.Output, "o", "", "write candidates (with --check: results) to this file, which appears complete or not at all; default stdout")
	fs.StringVar(&o.Format, "format", check.FormatText, "output format: text, jsonl or csv (jsonl and csv add sources, country, city, asn, as_org)")
	fs.BoolVar(&o.All, "all", false, "with --check: also write dead proxies, with their class (jsonl and csv only)")
	fs.StringVar(&o.OutDir, "out-dir", "", "also write proxies.json and all.txt, http.txt, socks4.txt, socks5.txt into this directory, each atomically")
	fs.StringVar(&o.Stats, "stats", "", "write per-source statistics as JSON to this file")

	fs.IntVar(&o.Fetchers, "fetchers", 0, "sources fetched at once (default: the config's concurrency, 16)")
	fs.DurationVar(&o.SourceTimeout, "source-timeout", 0, "time one source may take, retries included (default: the config's timeout, 30s)")
	fs.IntVar(&o.Retries, "retries", -1, "retries of a failed GET (default: the config's retries, 2)")
	fs.StringVar(&o.MaxSize, "max-size", "", "largest body of one source after decompression, e.g. 16MiB (default: the config's max_size)")
	fs.StringVar(&o.Upstream, "proxy", "", "fetch sources through this proxy: http://, https:// or socks5://[user:pass@]host:port")
	fs.IntVar(&o.CIDRCap, "cidr-cap", -1, "most addresses CIDR ranges of one source may expand to (default: the config's cidr_cap, 65536)")
	fs.BoolVar(&o.Hostnames, "hostnames", false, "accept host names as candidates, not only IP addresses")
	fs.StringVar(&o.CacheDir, "cache-dir", "", "directory of the conditional-GET cache (default: the user cache directory + proxyline/scrape)")
	fs.BoolVar(&o.NoCache, "no-cache", false, "fetch every source in full, without conditional GETs")

	fs.BoolVar(&o.Check, "check", false, "check candidates as they arrive and write the live ones (as 'proxyline check' does)")
	o.Judge.Register(fs) // for --check and --enqueue, as on check
	fs.DurationVar(&o.Timeout, "t", check.DefaultTimeout, "timeout of one whole check")
	fs.IntVar(&o.Concurrency, "c", backend.DefaultConcurrency, "checks at a time")
	o.Exec.Register(fs) // with --check, as on check
	fs.IntVar(&o.Chunk, "chunk", queue.DefaultChunk, "proxies per --exec run, and per job with --enqueue")

	fs.BoolVar(&o.Enqueue, "enqueue", false, "put the candidates on the queue as check jobs (sources and geo go to the pool)")
	o.DB.Register(fs)
	fs.StringVar(&o.GeoIPDB, "geoip-db", "", "MaxMind City or Country database (.mmdb) for country and city")
	fs.StringVar(&o.ASNDB, "asn-db", "", "MaxMind ASN database (.mmdb) for the autonomous system")
	fs.DurationVar(&o.Grace, "grace", 5*time.Second, "after the first SIGINT/SIGTERM, how long fetches and checks in flight may go on")
	// -1 means "the config's value", which the usage text names; flag's own "(default -1)"
	// would read as a real default to a new user.
	for _, name := range []string{"retries", "cidr-cap"} {
		fs.Lookup(name).DefValue = "0"
	}
	fs.StringVar(&o.KnownBad, "known-bad", "", "TESTING ONLY: break one promise on purpose for killtest's known-bad fixtures (no-atomic-write, no-graceful-stop)")
}

func scrapeCommand() command {
	return command{
		Name:    "scrape",
		Summary: "fetch proxy list sources and extract candidates; optionally check or enqueue them",
		Run: func(ctx context.Context, env *Env, args []string) error {
			var o scrape.Options
			fs := newFlagSet("scrape", "[flags] [URL|FILE ...]",
				"Fetches proxy list sources (from --config, the arguments, or the built-in public list when\n"+
					"neither is given), extracts candidates from any text, HTML table, JSON or CSV, removes\n"+
					"duplicates and writes them, checks them as they arrive (--check) or enqueues them (--enqueue).\n"+
					"Per-source statistics go to stderr. Exit status: 0 candidates found (with --check: a live\n"+
					"proxy), or stopped by a signal after writing what was found; 1 nothing found; 2 bad flags or\n"+
					"configuration; 3 runtime error. A second SIGINT/SIGTERM exits at once, writing nothing.")
			scrapeFlags(fs, &o)
			if err := parseFlags(fs, env, args); err != nil {
				return err
			}
			o.Args = fs.Args()
			if err := o.Validate(); err != nil {
				return usageError("%v", err)
			}
			err := scrape.Run(ctx, scrape.IO{Stdout: env.Stdout, Stderr: env.Stderr, Log: env.Log, Force: env.Force,
				Terminal: isTerminal(env.Stderr)}, o)
			switch {
			case errors.Is(err, scrape.ErrUsage):
				return usageError("%v", err)
			case errors.Is(err, scrape.ErrNothing):
				return failure(err)
			}
			return err
		},
	}
}
