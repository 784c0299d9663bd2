package run

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/internal/rotate"
	"github.com/proxyline/proxyline/internal/scrape"
	"github.com/proxyline/proxyline/internal/serve"
	"github.com/proxyline/proxyline/internal/tomlfile"
)

// defaultsTOML is the documented default configuration: every key with its default and a
// comment. --print-config prints it; Default decodes it.
//
//go:embed defaults.toml
var defaultsTOML []byte

// DefaultConfig returns the text of the default configuration, as --print-config prints it.
func DefaultConfig() []byte { return bytes.Clone(defaultsTOML) }

// Config is a `proxyline run` configuration file (docs/run.md). Keys absent from a file keep the
// defaults of defaults.toml.
type Config struct {
	Database  DatabaseConfig  `toml:"database"`
	Schedule  ScheduleConfig  `toml:"schedule"`
	Check     CheckConfig     `toml:"check"`
	Workers   WorkersConfig   `toml:"workers"`
	Rotate    RotateConfig    `toml:"rotate"`
	Console   ConsoleConfig   `toml:"console"`
	Retention RetentionConfig `toml:"retention"`
	Shutdown  ShutdownConfig  `toml:"shutdown"`
	Scrape    scrape.Config   `toml:"scrape"`
}

// DatabaseConfig is [database].
type DatabaseConfig struct {
	URL string `toml:"url"` // SQLite file or postgres:// URL
}

// ScheduleConfig is [schedule].
type ScheduleConfig struct {
	ScrapeInterval    Duration `toml:"scrape_interval"`
	RecheckInterval   Duration `toml:"recheck_interval"`
	DeadBackoff       Duration `toml:"dead_backoff"`
	DeadBackoffFactor float64  `toml:"dead_backoff_factor"`
	DeadBackoffMax    Duration `toml:"dead_backoff_max"`
	Tick              Duration `toml:"tick"`
	Batch             int      `toml:"batch"`
	Chunk             int      `toml:"chunk"`
	Lease             Duration `toml:"lease"`
	MaxWaitingJobs    int      `toml:"max_waiting_jobs"`
}

// CheckConfig is [check]: the judge (check.JudgeConfig's fields), the timeout and the protocols.
type CheckConfig struct {
	Judge        string   `toml:"judge"`
	JudgeCA      string   `toml:"judge_ca"`
	JudgeStatus  int      `toml:"judge_status"`
	JudgeKeyword string   `toml:"judge_keyword"`
	JudgePQ      bool     `toml:"judge_pq"`
	Timeout      Duration `toml:"timeout"`
	Protocols    []string `toml:"protocols"`
}

// JudgeConfig is the section's judge as check.JudgeConfig.
func (c CheckConfig) JudgeConfig() check.JudgeConfig {
	return check.JudgeConfig{URL: c.Judge, CAFile: c.JudgeCA, Status: c.JudgeStatus, Keyword: c.JudgeKeyword, PostQuantum: c.JudgePQ}
}

// WorkersConfig is [workers].
type WorkersConfig struct {
	Processes   int      `toml:"processes"`
	Concurrency int      `toml:"concurrency"`
	Parallel    int      `toml:"parallel"`
	Grace       Duration `toml:"grace"`
}

// ListenConfig is the listening part of [rotate] and [console], internal/serve's rule.
type ListenConfig struct {
	Enabled        bool   `toml:"enabled"`
	Listen         string `toml:"listen"`
	AuthFile       string `toml:"auth_file"`
	InsecureNoAuth bool   `toml:"insecure_no_auth"`
}

// Options is the section as serve.Options.
func (l ListenConfig) Options() serve.Options {
	return serve.Options{Listen: l.Listen, AuthFile: l.AuthFile, Insecure: l.InsecureNoAuth}
}

// RotateConfig is [rotate].
type RotateConfig struct {
	ListenConfig
	Policy string   `toml:"policy"`
	Drain  Duration `toml:"drain"`
}

// ConsoleConfig is [console].
type ConsoleConfig struct {
	ListenConfig
}

// RetentionConfig is [retention].
type RetentionConfig struct {
	MaxAge          Duration `toml:"max_age"`
	MaxRowsPerProxy int      `toml:"max_rows_per_proxy"`
	Interval        Duration `toml:"interval"`
	Batch           int      `toml:"batch"`
}

// ShutdownConfig is [shutdown].
type ShutdownConfig struct {
	Deadline Duration `toml:"deadline"`
}

// Duration is a Go duration written as a string in TOML ("30s").
type Duration time.Duration

// UnmarshalText reads "30s"; a negative duration is an error.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: want a Go duration such as \"30s\" or \"10m\"", b)
	}
	if v < 0 {
		return fmt.Errorf("duration %s is negative", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration as Go prints it.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// D returns the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Default returns the default configuration.
func Default() Config {
	c, err := ParseConfig(nil, "defaults.toml")
	if err != nil {
		panic("run defaults.toml: " + err.Error()) // embedded and tested: a programmer's mistake
	}
	return c
}

// LoadConfig reads a configuration file over the defaults. Errors name the file and, for syntax
// errors, unknown keys, wrong types and bad durations, the line and the key.
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return ParseConfig(b, path)
}

// ParseConfig decodes b (named name in errors) over the defaults and validates the result.
func ParseConfig(b []byte, name string) (Config, error) {
	var c Config
	if err := decode(defaultsTOML, "defaults.toml", &c); err != nil {
		return Config{}, err
	}
	if err := decode(b, name, &c); err != nil {
		return Config{}, err
	}
	return c, c.Validate(name)
}

// decode decodes b (named name in errors) into c strictly (internal/tomlfile).
func decode(b []byte, name string, c *Config) error { return tomlfile.Decode(b, name, c) }

// Validate checks every value, naming the file and the key.
func (c Config) Validate(name string) error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s: %s", name, key, fmt.Sprintf(format, args...)))
	}
	if err := (queue.Config{Database: c.Database.URL}).Validate(); err != nil {
		bad("database.url", "%v", err)
	}
	c.Schedule.validate(bad)
	c.Check.validate(bad)
	c.Workers.validate(bad)
	c.Rotate.validate(bad)
	if c.Console.Enabled {
		if err := c.Console.Options().Validate(); err != nil {
			bad("console", "%v (here: auth_file = FILE or insecure_no_auth = true)", err)
		}
	}
	if c.Retention.MaxRowsPerProxy < 0 {
		bad("retention.max_rows_per_proxy", "%d: must not be negative", c.Retention.MaxRowsPerProxy)
	}
	if c.Retention.Interval <= 0 || c.Retention.Batch < 1 {
		bad("retention", "interval must be positive and batch at least 1")
	}
	least := c.Rotate.Drain.D() + c.Workers.Grace.D() + 5*time.Second
	if c.Shutdown.Deadline.D() < least {
		bad("shutdown.deadline", "%s: want at least rotate.drain + workers.grace + 5s = %s", c.Shutdown.Deadline.D(), least)
	}
	if err := c.Scrape.Validate(name + ": scrape"); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

type badFunc func(key, format string, args ...any)

func (s ScheduleConfig) validate(bad badFunc) {
	for _, d := range []struct {
		key string
		v   Duration
	}{{"scrape_interval", s.ScrapeInterval}, {"recheck_interval", s.RecheckInterval}, {"dead_backoff", s.DeadBackoff},
		{"dead_backoff_max", s.DeadBackoffMax}, {"tick", s.Tick}, {"lease", s.Lease}} {
		if d.v <= 0 {
			bad("schedule."+d.key, "must be positive")
		}
	}
	if s.DeadBackoffFactor < 1 || s.DeadBackoffFactor > 100 {
		bad("schedule.dead_backoff_factor", "%v: want 1-100", s.DeadBackoffFactor)
	}
	if s.DeadBackoffMax < s.DeadBackoff {
		bad("schedule.dead_backoff_max", "%s is shorter than dead_backoff %s", s.DeadBackoffMax.D(), s.DeadBackoff.D())
	}
	if s.Batch < 1 || s.Batch > 100_000 {
		bad("schedule.batch", "%d: want 1-100000", s.Batch)
	}
	if s.Chunk < 1 || s.Chunk > 10_000 {
		bad("schedule.chunk", "%d: want 1-10000", s.Chunk)
	}
	if s.MaxWaitingJobs < 1 {
		bad("schedule.max_waiting_jobs", "%d: must be at least 1", s.MaxWaitingJobs)
	}
}

// protocols are the schemes [check] protocols may name.
var protocols = []string{"http", "https", "socks4", "socks4a", "socks5"}

func (c CheckConfig) validate(bad badFunc) {
	if err := c.JudgeConfig().Validate(); err != nil {
		bad("check", "%v", err)
	}
	if c.Timeout <= 0 {
		bad("check.timeout", "must be positive")
	}
	for _, p := range c.Protocols {
		if !slices.Contains(protocols, p) {
			bad("check.protocols", "%q: want any of %s", p, strings.Join(protocols, ", "))
		}
	}
}

func (w WorkersConfig) validate(bad badFunc) {
	if w.Processes < 0 || w.Processes > 64 {
		bad("workers.processes", "%d: want 0-64", w.Processes)
	}
	if w.Concurrency < 1 || w.Concurrency > 10_000 {
		bad("workers.concurrency", "%d: want 1-10000", w.Concurrency)
	}
	if w.Parallel < 1 || w.Parallel > 10_000 {
		bad("workers.parallel", "%d: want 1-10000", w.Parallel)
	}
	if w.Grace <= 0 {
		bad("workers.grace", "must be positive")
	}
}

func (r RotateConfig) validate(bad badFunc) {
	if !r.Enabled {
		return
	}
	if err := r.Options().Validate(); err != nil {
		bad("rotate", "%v (here: auth_file = FILE or insecure_no_auth = true)", err)
	}
	if !slices.Contains(rotate.Policies(), rotate.Policy(r.Policy)) {
		bad("rotate.policy", "%q: want round-robin, random or fastest", r.Policy)
	}
}

// wantsProtocol reports whether a candidate of scheme s is to be scheduled: every one when
// [check] protocols is empty, and a candidate without a scheme always.
func (c CheckConfig) wantsProtocol(s string) bool {
	return len(c.Protocols) == 0 || s == "" || slices.Contains(c.Protocols, s)
}
