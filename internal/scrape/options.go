package scrape

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/proxyline/proxyline/internal/backend"
	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/internal/queue"
)

// Errors Run returns for the command to map to exit codes (errors.Is).
var (
	ErrUsage   = errors.New("usage")         // bad flags, configuration or input: exit 2
	ErrNothing = errors.New("nothing found") // the run worked but found no candidate (or, with --check, no live proxy): exit 1
)

// Known-bad modes (Options.KnownBad), each breaking one promise on purpose so that killtest's
// known-bad fixtures can show their check catches it. Never for real use.
const (
	BadNoAtomicWrite  = "no-atomic-write"  // write output files in place: a kill leaves them partial
	BadNoGracefulStop = "no-graceful-stop" // ignore the first signal: fetch on until done or killed
)

// Options are the scrape command's settings (its flags). The zero value of a field that has a
// configuration key means "the configuration's value".
type Options struct {
	Config      string   // --config: TOML file; "" = the sources given as Args, or the defaults
	PrintConfig bool     // --print-config: print the documented defaults and exit
	Args        []string // sources given on the command line: URLs or files

	Output string // -o: candidates (or, with Check, results) file; "" = stdout
	Format string // --format: text, jsonl or csv (check's formats)
	All    bool   // --all: with Check, also write dead proxies (jsonl, csv)
	OutDir string // --out-dir: PSC-style directory
	Stats  string // --stats: per-source statistics as JSON

	Fetchers      int           // --fetchers: sources at once (config concurrency)
	SourceTimeout time.Duration // --source-timeout (config timeout)
	Retries       int           // --retries; -1 = the config's
	MaxSize       string        // --max-size (config max_size)
	Upstream      string        // --proxy: upstream proxy for fetches (config proxy)
	CIDRCap       int           // --cidr-cap; -1 = the config's
	Hostnames     bool          // --hostnames (or config hostnames)
	CacheDir      string        // --cache-dir; "" = the user cache dir + proxyline/scrape
	NoCache       bool          // --no-cache

	Check       bool              // --check: check candidates as they arrive
	Judge       check.JudgeConfig // --judge and its flags, as on every command that checks
	Timeout     time.Duration     // -t
	Concurrency int               // -c
	Exec        backend.Exec      // --exec and its flags, as on check
	Chunk       int               // --chunk: proxies per --exec run, and per job with --enqueue

	Enqueue bool               // --enqueue: put candidates on the queue as check jobs
	DB      queue.DatabaseFlag // --database

	GeoIPDB string // --geoip-db: MaxMind City or Country database
	ASNDB   string // --asn-db: MaxMind ASN database

	Grace    time.Duration // --grace: how long work in flight may go on after the first signal
	KnownBad string        // --known-bad: break one promise on purpose (killtest fixtures only)
}

// IO is what Run gets from the command: where results and diagnostics go, the force channel
// (closed on the second signal) and whether stderr is a terminal (progress bar).
type IO struct {
	Stdout, Stderr io.Writer
	Log            *slog.Logger
	Force          <-chan struct{}
	Terminal       bool
}

// Validate reports every bad option.
func (o *Options) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if o.PrintConfig {
		return nil
	}
	if !slices.Contains(check.Formats(), o.Format) {
		bad("--format %q: want one of %s", o.Format, strings.Join(check.Formats(), ", "))
	}
	if o.All && (!o.Check || o.Format == check.FormatText) {
		bad("--all needs --check and --format jsonl or csv")
	}
	if o.Check && o.Enqueue {
		bad("--check and --enqueue exclude each other: check here, or let workers check")
	}
	if (o.Check || o.Enqueue) && o.Judge.URL == "" && o.Exec.Template == "" {
		bad("--judge URL is required with --check and --enqueue")
	}
	if o.Exec.Template != "" && !o.Check {
		bad("--exec needs --check")
	}
	if err := o.Judge.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := o.Exec.Validate(); err != nil {
		errs = append(errs, err)
	}
	if o.Timeout <= 0 {
		bad("-t %v: must be positive", o.Timeout)
	}
	if o.Concurrency < 1 {
		bad("-c %d: must be at least 1", o.Concurrency)
	}
	if o.Chunk < 1 {
		bad("--chunk %d: must be at least 1", o.Chunk)
	}
	if o.Fetchers < 0 || o.SourceTimeout < 0 || o.Retries < -1 || o.CIDRCap < -1 || o.Grace < 0 {
		bad("--fetchers, --source-timeout, --retries, --cidr-cap and --grace must not be negative")
	}
	if o.MaxSize != "" {
		if _, err := ParseSize(o.MaxSize); err != nil {
			bad("--max-size: %v", err)
		}
	}
	if o.Upstream != "" {
		if _, err := ParseUpstream(o.Upstream); err != nil {
			bad("--proxy: %v", err)
		}
	}
	if o.Config != "" && len(o.Args) > 0 {
		bad("--config and sources as arguments exclude each other")
	}
	if o.Enqueue {
		if err := o.DB.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	switch o.KnownBad {
	case "", BadNoAtomicWrite, BadNoGracefulStop:
	default:
		bad("--known-bad %q: want %s or %s", o.KnownBad, BadNoAtomicWrite, BadNoGracefulStop)
	}
	return errors.Join(errs...)
}
