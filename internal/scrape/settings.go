package scrape

import (
	"log/slog"
	"time"

	"github.com/proxyline/proxyline/internal/scrape/fetch"
)

// Validate checks every value of c as LoadConfig does; name says where c came from (a file, or
// a file and a section), for the errors.
func (c Config) Validate(name string) error { return c.validate(name) }

// FetchConfig is the fetcher's configuration for c's settings (retries, back-off, redirects,
// size, user agent, upstream proxy), without a cache.
func (c Config) FetchConfig(log *slog.Logger) fetch.Config {
	fcfg := fetch.Config{MaxSize: int64(c.MaxSize), Retries: c.Retries, Backoff: time.Duration(c.Backoff),
		BackoffMax: time.Duration(c.BackoffMax), MaxRedirects: c.MaxRedirects, UserAgent: c.UserAgent, Log: log}
	if fcfg.Retries == 0 {
		fcfg.Retries = -1
	}
	if fcfg.MaxRedirects == 0 {
		fcfg.MaxRedirects = -1
	}
	if c.Proxy != "" {
		fcfg.Proxy, _ = ParseUpstream(c.Proxy)
	}
	return fcfg
}

// Enabled returns the sources of c that are not switched off (enabled = false).
func (c Config) Enabled() []Source {
	var out []Source
	for _, s := range c.Sources {
		if s.enabled() {
			out = append(out, s)
		}
	}
	return out
}
