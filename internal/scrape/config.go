package scrape

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/proxyline/proxyline/internal/scrape/extract"
	"github.com/proxyline/proxyline/internal/scrape/fetch"
	"github.com/proxyline/proxyline/internal/tomlfile"
	"github.com/proxyline/proxyline/proxy"
)

// defaultsTOML is the documented default configuration: every key with its default value, and
// the well-known public sources used when a user gives neither a config file nor sources.
//
//go:embed defaults.toml
var defaultsTOML []byte

// DefaultConfig returns the text of the default configuration, as --print-config prints it.
func DefaultConfig() []byte { return bytes.Clone(defaultsTOML) }

// Config is a scrape configuration file (docs/scrape.md). Keys absent from a file keep the
// defaults of defaults.toml.
type Config struct {
	Concurrency  int      `toml:"concurrency"`
	Timeout      Duration `toml:"timeout"`
	MaxSize      Size     `toml:"max_size"`
	Retries      int      `toml:"retries"`
	Backoff      Duration `toml:"backoff"`
	BackoffMax   Duration `toml:"backoff_max"`
	MaxRedirects int      `toml:"max_redirects"`
	UserAgent    string   `toml:"user_agent"`
	Proxy        string   `toml:"proxy"`
	CIDRCap      int      `toml:"cidr_cap"`
	Hostnames    bool     `toml:"hostnames"`
	Sources      []Source `toml:"source"`
}

// Source is one proxy list.
type Source struct {
	Name      string            `toml:"name"`
	URL       string            `toml:"url"`
	File      string            `toml:"file"`
	Format    string            `toml:"format"`
	JSONPath  string            `toml:"json_path"`
	Protocol  string            `toml:"protocol"`
	Headers   map[string]string `toml:"headers"`
	BasicAuth *BasicAuth        `toml:"basic_auth"`
	Timeout   Duration          `toml:"timeout"`
	Enabled   *bool             `toml:"enabled"`
}

// BasicAuth is a source's HTTP basic authentication.
type BasicAuth struct {
	User     string `toml:"user"`
	Password string `toml:"password"`
}

// Duration is a Go duration written as a string in TOML.
type Duration time.Duration

// UnmarshalText reads "30s".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	if v < 0 {
		return fmt.Errorf("duration %s is negative", b)
	}
	*d = Duration(v)
	return nil
}

// Size is a byte count written as a number or a string with a unit (KiB, MiB, GiB, KB, MB, GB).
type Size int64

// UnmarshalText reads "16MiB" or "1000".
func (s *Size) UnmarshalText(b []byte) error {
	v, err := ParseSize(string(b))
	*s = Size(v)
	return err
}

// ParseSize reads a byte count: a number with an optional unit (KiB, MiB, GiB, KB, MB, GB, B).
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	units := []struct {
		suffix string
		mul    int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1000}, {"MB", 1000_000}, {"GB", 1000_000_000}, {"B", 1}}
	mul := int64(1)
	for _, u := range units {
		if strings.HasSuffix(t, u.suffix) {
			t, mul = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mul
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 || n > (1<<40)/mul {
		return 0, fmt.Errorf("size %q: want a positive number of bytes, with an optional unit (16MiB)", s)
	}
	return n * mul, nil
}

// LoadConfig reads a configuration file over the defaults. Errors name the file and, for syntax
// errors and unknown keys, the line; for bad values the source's index and field.
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return parseConfig(b, path, false)
}

// parseConfig decodes b over the defaults. The default sources are kept only when keepSources.
func parseConfig(b []byte, name string, keepSources bool) (Config, error) {
	var c Config
	if err := decode(defaultsTOML, "defaults.toml", &c); err != nil {
		return Config{}, err // a broken embedded file: tests catch it
	}
	if !keepSources {
		c.Sources = nil
	}
	if err := decode(b, name, &c); err != nil {
		return Config{}, err
	}
	return c, c.validate(name)
}

// decode decodes b (named name in errors) into c strictly (internal/tomlfile).
func decode(b []byte, name string, c *Config) error { return tomlfile.Decode(b, name, c) }

// DefaultSources returns the default configuration with its public sources.
func DefaultSources() Config {
	c, err := parseConfig(nil, "defaults.toml", true)
	if err != nil {
		panic("defaults.toml: " + err.Error()) // embedded and tested: a programmer's mistake
	}
	return c
}

// validate checks every value, naming the file, the source and the field.
func (c Config) validate(name string) error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s: %s", name, field, fmt.Sprintf(format, args...)))
	}
	if c.Concurrency < 1 || c.Concurrency > 1024 {
		bad("concurrency", "%d: want 1-1024", c.Concurrency)
	}
	if c.Timeout <= 0 {
		bad("timeout", "must be positive")
	}
	if c.MaxSize <= 0 {
		bad("max_size", "must be positive")
	}
	if c.Retries < 0 || c.Retries > 20 {
		bad("retries", "%d: want 0-20", c.Retries)
	}
	if c.MaxRedirects < 0 || c.MaxRedirects > 50 {
		bad("max_redirects", "%d: want 0-50", c.MaxRedirects)
	}
	if c.CIDRCap < 0 {
		bad("cidr_cap", "%d: must not be negative", c.CIDRCap)
	}
	if c.Proxy != "" {
		if _, err := ParseUpstream(c.Proxy); err != nil {
			bad("proxy", "%v", err)
		}
	}
	names := map[string]int{}
	for i, s := range c.Sources {
		where := fmt.Sprintf("source[%d]", i+1)
		if s.Name != "" {
			where += fmt.Sprintf(" (%s)", s.Name)
		}
		if err := s.check(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %s: %w", name, where, err))
		}
		n := s.Label()
		if j, dup := names[n]; dup {
			errs = append(errs, fmt.Errorf("%s: %s: name %q already used by source[%d]", name, where, n, j))
		}
		names[n] = i + 1
	}
	return errors.Join(errs...)
}

// check validates one source's fields.
func (s Source) check() error {
	switch {
	case s.URL == "" && s.File == "":
		return errors.New("url or file is required")
	case s.URL != "" && s.File != "":
		return errors.New("url and file exclude each other")
	}
	if s.URL != "" {
		u, err := url.Parse(s.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("url %q: want an http:// or https:// URL", fetch.Mask(s.URL))
		}
	}
	if _, err := extract.ParseFormat(s.Format); err != nil {
		return err
	}
	if s.JSONPath != "" && s.Format != "" && s.Format != string(extract.JSONF) && s.Format != string(extract.Auto) {
		return fmt.Errorf("json_path needs format json, not %q", s.Format)
	}
	if s.Protocol != "" {
		if p, err := proxy.Parse(s.Protocol + "://127.0.0.1:1"); err != nil || p.Scheme == proxy.Unknown {
			return fmt.Errorf("protocol %q: want http, https, socks4, socks4a or socks5", s.Protocol)
		}
	}
	if s.BasicAuth != nil && s.BasicAuth.User == "" {
		return errors.New("basic_auth: user is required")
	}
	if s.BasicAuth != nil && s.File != "" {
		return errors.New("basic_auth is for url sources")
	}
	return nil
}

// Label is the source's name in statistics and in the pool: its name, else its URL (masked) or
// file.
func (s Source) Label() string {
	switch {
	case s.Name != "":
		return s.Name
	case s.URL != "":
		return fetch.Mask(s.URL)
	}
	return s.File
}

// enabled reports whether the source is to be fetched.
func (s Source) enabled() bool { return s.Enabled == nil || *s.Enabled }

// scheme is the protocol hint as a Scheme.
func (s Source) scheme() proxy.Scheme {
	if s.Protocol == "" {
		return proxy.Unknown
	}
	p, _ := proxy.Parse(s.Protocol + "://127.0.0.1:1")
	return p.Scheme
}

// SourceFromArg makes a source of a command-line argument: an http(s) URL, else a file path.
// The format is detected.
func SourceFromArg(arg string) Source {
	if strings.HasPrefix(arg, "http://") || strings.HasPrefix(arg, "https://") {
		return Source{URL: arg}
	}
	return Source{File: arg}
}

// ParseUpstream checks an upstream proxy URL (http, https or socks5, optional credentials).
func ParseUpstream(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a URL", fetch.Mask(s))
	}
	switch u.Scheme {
	case "http", "https", "socks5", "socks5h":
	default:
		return nil, fmt.Errorf("%q: want http://, https:// or socks5://[user:pass@]host:port", fetch.Mask(s))
	}
	if u.Host == "" || u.Port() == "" {
		return nil, fmt.Errorf("%q: want host:port", fetch.Mask(s))
	}
	return u, nil
}
