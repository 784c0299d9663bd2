// Package fetch gets the bodies of proxy list sources over HTTP with limits: a deadline per
// source (all attempts included), a cap on the body after decompression (so a gzip bomb stops at
// the cap), a redirect limit with a loop detector, retries of GETs with exponential backoff and
// jitter on network errors, 5xx and 429 (Retry-After honoured up to a cap), an optional upstream
// proxy, a polite User-Agent, and conditional GETs (ETag, Last-Modified) against a small on-disk
// cache, so that re-fetching an unchanged source costs one round trip. Credentials never appear
// in its errors: URLs are shown with their user information masked.
package fetch

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Defaults of Config's fields.
const (
	DefaultMaxSize      = 16 << 20
	DefaultRetries      = 2
	DefaultBackoff      = 500 * time.Millisecond
	DefaultBackoffMax   = 10 * time.Second
	DefaultMaxRedirects = 5
	DefaultUserAgent    = "proxyline-scrape/1 (proxy list fetcher; one request per list)"
	maxHeaderBytes      = 64 << 10
)

// Errors to test with errors.Is.
var (
	ErrTooLarge  = errors.New("body larger than the size cap")
	ErrRedirects = errors.New("too many redirects")
	ErrLoop      = errors.New("redirect loop")
)

// StatusError is an HTTP status other than 200 (or 304 to a conditional GET).
type StatusError struct {
	Code       int
	RetryAfter time.Duration // from a Retry-After header, 0 if none
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("HTTP %d %s", e.Code, http.StatusText(e.Code))
}

// Config configures a Fetcher. The zero value of each field means its default.
type Config struct {
	// MaxSize caps a body, counted after decompression. Default DefaultMaxSize (16 MiB).
	MaxSize int64
	// Retries is how many times a failed GET is tried again. Default DefaultRetries; negative
	// means none.
	Retries int
	// Backoff is the wait before the first retry; it doubles each time, with up to 50 % jitter
	// added, up to BackoffMax, which also caps a Retry-After. Defaults DefaultBackoff and
	// DefaultBackoffMax.
	Backoff, BackoffMax time.Duration
	// MaxRedirects bounds the redirects one GET follows. Default DefaultMaxRedirects; negative
	// means none.
	MaxRedirects int
	// UserAgent is sent with every request. Default DefaultUserAgent.
	UserAgent string
	// Proxy, if set, is the upstream proxy every request goes through (http, https or socks5).
	// Default: direct (the environment's HTTP_PROXY is not used).
	Proxy *url.URL
	// Cache, if set, makes GETs conditional on what it holds.
	Cache *Cache
	// Log receives one line per retry. Default: discard.
	Log *slog.Logger
	// Transport replaces the default transport (tests).
	Transport http.RoundTripper
}

// Fetcher gets source bodies. It is safe for concurrent use.
type Fetcher struct {
	cfg    Config
	client *http.Client
	tr     *http.Transport // nil when Config.Transport was given
}

// New returns a Fetcher. Call Close when done, to close idle connections.
func New(cfg Config) *Fetcher {
	cfg.MaxSize = cmp.Or(cfg.MaxSize, DefaultMaxSize)
	cfg.Retries = max(cmp.Or(cfg.Retries, DefaultRetries), 0)
	cfg.Backoff = cmp.Or(cfg.Backoff, DefaultBackoff)
	cfg.BackoffMax = cmp.Or(cfg.BackoffMax, DefaultBackoffMax)
	cfg.MaxRedirects = max(cmp.Or(cfg.MaxRedirects, DefaultMaxRedirects), 0)
	cfg.UserAgent = cmp.Or(cfg.UserAgent, DefaultUserAgent)
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	f := &Fetcher{cfg: cfg}
	rt := cfg.Transport
	if rt == nil {
		f.tr = &http.Transport{
			DialContext:            (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:    10 * time.Second,
			MaxResponseHeaderBytes: maxHeaderBytes,
			MaxIdleConns:           100,
			MaxIdleConnsPerHost:    4,
			IdleConnTimeout:        30 * time.Second,
			ForceAttemptHTTP2:      true,
		}
		if cfg.Proxy != nil {
			f.tr.Proxy = http.ProxyURL(cfg.Proxy)
		}
		rt = f.tr
	}
	f.client = &http.Client{Transport: rt, CheckRedirect: f.checkRedirect}
	return f
}

// Close closes idle connections.
func (f *Fetcher) Close() {
	if f.tr != nil {
		f.tr.CloseIdleConnections()
	}
}

// checkRedirect follows at most MaxRedirects redirects and never one back to a URL already
// visited.
func (f *Fetcher) checkRedirect(req *http.Request, via []*http.Request) error {
	next := req.URL.String()
	for _, v := range via {
		if v.URL.String() == next {
			chain := make([]string, 0, len(via)+1)
			for _, w := range via {
				chain = append(chain, Mask(w.URL.String()))
			}
			return fmt.Errorf("%w: %s → %s", ErrLoop, strings.Join(chain, " → "), Mask(next))
		}
	}
	if len(via) > f.cfg.MaxRedirects {
		return fmt.Errorf("%w: more than %d", ErrRedirects, f.cfg.MaxRedirects)
	}
	return nil
}

// Request is one source to get.
type Request struct {
	URL            string
	Header         map[string]string
	User, Password string // HTTP basic authentication, if User is set
}

// Response is a source's body, or the cached candidates when it had not changed.
type Response struct {
	Body        []byte
	ContentType string
	Attempts    int
	// NotModified is set when the server answered 304 to a conditional GET: Cached holds what
	// the cache kept for the source, and Body is empty.
	NotModified bool
	Cached      *Entry
	// ETag and LastModified are the validators the server sent, for the cache.
	ETag, LastModified string
}

// Get fetches req within ctx (its deadline bounds every attempt and wait). A GET is retried on
// network errors, 5xx and 429; other statuses, a body past the cap, too many redirects and the
// end of ctx end it at once.
func (f *Fetcher) Get(ctx context.Context, req Request) (*Response, error) {
	var cached *Entry
	if f.cfg.Cache != nil {
		cached = f.cfg.Cache.Load(req)
	}
	for attempt := 1; ; attempt++ {
		resp, err := f.once(ctx, req, cached)
		if err == nil {
			resp.Attempts = attempt
			return resp, nil
		}
		wait, retry := f.retryable(err, attempt)
		if !retry || ctx.Err() != nil {
			if attempt > 1 {
				return nil, fmt.Errorf("after %d attempts: %w", attempt, err)
			}
			return nil, err
		}
		f.cfg.Log.Debug("fetch failed, retrying", "url", Mask(req.URL), "attempt", attempt, "wait", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("after %d attempts: %w (then %w)", attempt, err, context.Cause(ctx))
		case <-t.C:
		}
	}
}

// retryable says whether attempt's error is worth another try, and after how long.
func (f *Fetcher) retryable(err error, attempt int) (time.Duration, bool) {
	if attempt > f.cfg.Retries || errors.Is(err, ErrTooLarge) || errors.Is(err, ErrRedirects) ||
		errors.Is(err, ErrLoop) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return 0, false
	}
	wait := f.cfg.Backoff << (attempt - 1)
	if wait <= 0 || wait > f.cfg.BackoffMax {
		wait = f.cfg.BackoffMax
	}
	wait += time.Duration(rand.Int64N(int64(wait)/2 + 1))
	var se *StatusError
	if errors.As(err, &se) {
		if se.Code != http.StatusTooManyRequests && se.Code < 500 {
			return 0, false
		}
		if se.RetryAfter > 0 {
			wait = min(se.RetryAfter, f.cfg.BackoffMax)
		}
	}
	return wait, true
}

// once is one GET.
func (f *Fetcher) once(ctx context.Context, req Request, cached *Entry) (*Response, error) {
	hr, err := http.NewRequestWithContext(ctx, http.MethodGet, req.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("request: %s", maskErr(err))
	}
	hr.Header.Set("User-Agent", f.cfg.UserAgent)
	hr.Header.Set("Accept", "text/plain, application/json, text/csv, text/html;q=0.9, */*;q=0.5")
	for k, v := range req.Header {
		hr.Header.Set(k, v)
	}
	if req.User != "" {
		hr.SetBasicAuth(req.User, req.Password)
	}
	if cached != nil {
		if cached.ETag != "" {
			hr.Header.Set("If-None-Match", cached.ETag)
		}
		if cached.LastModified != "" {
			hr.Header.Set("If-Modified-Since", cached.LastModified)
		}
	}
	resp, err := f.client.Do(hr)
	if err != nil {
		return nil, maskErr(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotModified && cached != nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return &Response{NotModified: true, Cached: cached, ETag: cached.ETag, LastModified: cached.LastModified}, nil
	}
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, &StatusError{Code: resp.StatusCode, RetryAfter: retryAfter(resp.Header.Get("Retry-After"))}
	}
	body, err := ReadCapped(resp.Body, f.cfg.MaxSize)
	if err != nil {
		return nil, maskErr(err)
	}
	return &Response{Body: body, ContentType: resp.Header.Get("Content-Type"),
		ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified")}, nil
}

// ReadCapped reads r to its end, or fails with ErrTooLarge past max bytes.
func ReadCapped(r io.Reader, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%w (%d bytes)", ErrTooLarge, max)
	}
	return b, nil
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// Mask returns a URL with its user information (user:password@) replaced by "***@", so it can
// be logged. Text that is not a URL is returned unchanged.
func Mask(s string) string {
	i := strings.Index(s, "://")
	if i < 0 {
		return s
	}
	rest := s[i+3:]
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	at := strings.LastIndexByte(rest[:end], '@')
	if at < 0 {
		return s
	}
	return s[:i+3] + "***@" + rest[at+1:]
}

// maskErr masks the URLs a *url.Error carries (net/http already hides passwords, not users).
func maskErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return &url.Error{Op: ue.Op, URL: Mask(ue.URL), Err: ue.Err}
	}
	return err
}
