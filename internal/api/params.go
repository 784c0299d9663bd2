package api

import (
	"cmp"
	"encoding/base64"
	"fmt"
	"math"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/internal/pool"
	"github.com/proxyline/proxyline/proxy"
)

// ParamError is a bad query parameter: the API answers 400 with its message, which names the
// parameter.
type ParamError struct {
	Param  string
	Reason string
}

func (e *ParamError) Error() string { return "parameter " + e.Param + ": " + e.Reason }

func paramErr(param, format string, args ...any) *ParamError {
	return &ParamError{Param: param, Reason: fmt.Sprintf(format, args...)}
}

// The limits of the listing parameters.
const (
	DefaultLimit  = 100  // rows of /proxies when limit is not given
	MaxLimit      = 1000 // the most rows of one page of /proxies
	DefaultAmong  = 100  // candidates of /pick's random and round-robin policies
	MaxAmong      = 1000
	HistoryLimit  = 500 // rows of a history when limit is not given
	MaxHistory    = pool.MaxLimit
	maxListValues = 32 // values of one list parameter (protocol=a,b,...)
)

// Query is what the pool listing parameters ask for.
type Query struct {
	Filter      pool.Filter
	Credentials bool // credentials=1: passwords in clear (authenticated requests only)
}

// The parameters each endpoint accepts, beyond which a request is refused (a typo must not
// silently select everything).
var (
	filterParams  = []string{"class", "protocol", "country", "anonymity", "max_latency", "checked_within"}
	listParams    = append(slices.Clone(filterParams), "limit", "cursor", "credentials")
	pickParams    = []string{"protocol", "country", "anonymity", "max_latency", "checked_within", "policy", "among", "credentials"}
	historyParams = []string{"scheme", "since", "limit", "credentials"}
)

// known refuses a parameter not in allowed, naming it and the allowed ones.
func known(v url.Values, allowed []string) error {
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !slices.Contains(allowed, k) {
			name := k
			if name == "" || strings.ContainsFunc(name, func(r rune) bool { return r < ' ' || r == 0x7f }) {
				name = strconv.Quote(trunc(name))
			}
			if len(allowed) == 0 {
				return paramErr(name, "unknown parameter (this endpoint takes none)")
			}
			return paramErr(name, "unknown parameter (this endpoint takes %s)", strings.Join(allowed, ", "))
		}
	}
	return nil
}

// ParseQuery reads the parameters of GET /api/v1/proxies (and of the web UI's pool page) at
// time now.
func ParseQuery(v url.Values, now time.Time) (Query, error) {
	if err := known(v, listParams); err != nil {
		return Query{}, err
	}
	var q Query
	var err error
	if q.Filter, err = parseFilter(v, now); err != nil {
		return Query{}, err
	}
	if q.Filter.Limit, err = intParam(v, "limit", DefaultLimit, 1, MaxLimit); err != nil {
		return Query{}, err
	}
	if q.Filter.After, err = ParseCursor(v.Get("cursor")); err != nil {
		return Query{}, err
	}
	if q.Credentials, err = boolParam(v, "credentials"); err != nil {
		return Query{}, err
	}
	return q, nil
}

// parseFilter reads the filter parameters (class, protocol, country, anonymity, max_latency,
// checked_within).
func parseFilter(v url.Values, now time.Time) (pool.Filter, error) {
	var f pool.Filter
	classes, err := listParam(v, "class", classNames(), strings.ToLower)
	if err != nil {
		return f, err
	}
	switch {
	case slices.Contains(classes, "all"):
		if len(classes) > 1 {
			return f, paramErr("class", "all cannot be combined with other classes")
		}
		f.AnyClass = true
	default:
		for _, c := range classes {
			f.Classes = append(f.Classes, check.Class(c))
		}
	}
	if f.Protocols, err = listParam(v, "protocol", protocolNames(), strings.ToLower); err != nil {
		return f, err
	}
	anon, err := listParam(v, "anonymity", []string{string(check.Elite), string(check.Anonymous), string(check.Transparent)}, strings.ToLower)
	if err != nil {
		return f, err
	}
	for _, a := range anon {
		f.Anonymity = append(f.Anonymity, check.Anonymity(a))
	}
	if f.Countries, err = countryParam(v); err != nil {
		return f, err
	}
	if f.MaxLatency, err = durationParam(v, "max_latency", time.Millisecond); err != nil {
		return f, err
	}
	within, err := durationParam(v, "checked_within", time.Second)
	if err != nil {
		return f, err
	}
	if within > 0 {
		f.CheckedSince = now.Add(-within)
	}
	return f, nil
}

func classNames() []string {
	return []string{"all", string(check.Alive), string(check.Refused), string(check.Timeout), string(check.BadResponse),
		string(check.AuthNeeded), string(check.TLSError), string(check.Mismatch), string(check.Unreachable),
		string(check.Canceled), string(check.Dead)}
}

func protocolNames() []string {
	var out []string
	for _, s := range proxy.Schemes() {
		out = append(out, string(s))
	}
	return out
}

// values returns every value of a parameter, repeated (p=a&p=b) or comma-separated (p=a,b),
// trimmed, without empty ones.
func values(v url.Values, name string) []string {
	var out []string
	for _, raw := range v[name] {
		for _, s := range strings.Split(raw, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

// listParam reads a list parameter whose values must be in allowed (after norm).
func listParam(v url.Values, name string, allowed []string, norm func(string) string) ([]string, error) {
	vals := values(v, name)
	if len(vals) > maxListValues {
		return nil, paramErr(name, "%d values, at most %d", len(vals), maxListValues)
	}
	var out []string
	for _, s := range vals {
		s = norm(s)
		if !slices.Contains(allowed, s) {
			return nil, paramErr(name, "%q is not one of %s", trunc(s), strings.Join(allowed, ", "))
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

// countryParam reads country: ISO 3166 two-letter codes, any case.
func countryParam(v url.Values) ([]string, error) {
	vals := values(v, "country")
	if len(vals) > maxListValues*8 {
		return nil, paramErr("country", "%d values, at most %d", len(vals), maxListValues*8)
	}
	var out []string
	for _, s := range vals {
		s = strings.ToUpper(s)
		if len(s) != 2 || s[0] < 'A' || s[0] > 'Z' || s[1] < 'A' || s[1] > 'Z' {
			return nil, paramErr("country", "%q is not a two-letter country code (DE, FR, US, ...)", trunc(s))
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

// maxDuration bounds duration parameters: ten years, far below time.Duration's range.
const maxDuration = 10 * 365 * 24 * time.Hour

// durationParam reads a positive duration: a Go duration ("1h30m", "500ms"), a number of days
// ("7d"), or a bare number of units (milliseconds for a latency, seconds for an age). Absent: 0.
func durationParam(v url.Values, name string, unit time.Duration) (time.Duration, error) {
	s := strings.TrimSpace(v.Get(name))
	if s == "" {
		return 0, nil
	}
	d, err := parseDuration(s, unit)
	if err != nil {
		return 0, paramErr(name, "%v", err)
	}
	return d, nil
}

func parseDuration(s string, unit time.Duration) (time.Duration, error) {
	var d time.Duration
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.ParseFloat(n, 64)
		if err != nil || math.IsNaN(days) {
			return 0, fmt.Errorf("%q: want a duration such as 500ms, 2h or 7d", trunc(s))
		}
		if days*24 > maxDuration.Hours() || days < 0 {
			return 0, fmt.Errorf("%q: out of range (0 to 10 years)", trunc(s))
		}
		d = time.Duration(days * float64(24*time.Hour))
	} else if n, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(n) {
		if n*float64(unit) > float64(maxDuration) || n < 0 {
			return 0, fmt.Errorf("%q: out of range (0 to 10 years)", trunc(s))
		}
		d = time.Duration(n * float64(unit))
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("%q: want a duration such as 500ms, 2h or 7d", trunc(s))
		}
	}
	if d <= 0 || d > maxDuration {
		return 0, fmt.Errorf("%q: must be positive and at most 10 years", trunc(s))
	}
	return d, nil
}

// intParam reads an integer in [lo, hi]; absent, def.
func intParam(v url.Values, name string, def, lo, hi int) (int, error) {
	s := strings.TrimSpace(v.Get(name))
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, paramErr(name, "%q: want a whole number from %d to %d", trunc(s), lo, hi)
	}
	return n, nil
}

// boolParam reads 1/true/yes or 0/false/no (or empty: false).
func boolParam(v url.Values, name string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v.Get(name))) {
	case "", "0", "false", "no":
		return false, nil
	case "1", "true", "yes":
		return true, nil
	}
	return false, paramErr(name, "%q: want 1 or 0", trunc(v.Get(name)))
}

// EncodeCursor returns the cursor parameter that continues a listing after c ("" for the zero
// Cursor: no next page). It is opaque to clients: URL-query encoded fields, in base64url.
func EncodeCursor(c pool.Cursor) string {
	if c.IsZero() {
		return ""
	}
	v := url.Values{"c": {c.Class}, "t": {strconv.FormatInt(c.TotalMS, 10)}, "a": {c.Addr}, "s": {c.Scheme}}
	return base64.RawURLEncoding.EncodeToString([]byte(v.Encode()))
}

// ParseCursor reads a cursor parameter written by EncodeCursor ("" is the start).
func ParseCursor(s string) (pool.Cursor, error) {
	if s == "" {
		return pool.Cursor{}, nil
	}
	bad := paramErr("cursor", "not a cursor this server gave (use next_cursor of the previous page)")
	if len(s) > 2048 {
		return pool.Cursor{}, bad
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return pool.Cursor{}, bad
	}
	v, err := url.ParseQuery(string(b))
	if err != nil || len(v) != 4 || len(v["c"]) != 1 || len(v["t"]) != 1 || len(v["a"]) != 1 || len(v["s"]) != 1 {
		return pool.Cursor{}, bad
	}
	total, err := strconv.ParseInt(v.Get("t"), 10, 64)
	c := pool.Cursor{Class: v.Get("c"), TotalMS: total, Addr: v.Get("a"), Scheme: v.Get("s")}
	if err != nil || c.IsZero() {
		return pool.Cursor{}, bad
	}
	return c, nil
}

// PickQuery is what the /pick parameters ask for.
type PickQuery struct {
	Filter      pool.Filter // alive only
	Policy      string      // fastest, random or round-robin
	Among       int         // candidates for random and round-robin
	Credentials bool
}

// The pick policies.
const (
	PolicyFastest    = "fastest"
	PolicyRandom     = "random"
	PolicyRoundRobin = "round-robin"
)

// ParsePick reads the parameters of GET /api/v1/pick at time now.
func ParsePick(v url.Values, now time.Time) (PickQuery, error) {
	if err := known(v, pickParams); err != nil {
		return PickQuery{}, err
	}
	var q PickQuery
	var err error
	if q.Filter, err = parseFilter(v, now); err != nil {
		return PickQuery{}, err
	}
	q.Policy = cmp.Or(strings.ToLower(strings.TrimSpace(v.Get("policy"))), PolicyFastest)
	switch q.Policy {
	case PolicyFastest, PolicyRandom, PolicyRoundRobin:
	default:
		return PickQuery{}, paramErr("policy", "%q is not one of fastest, random, round-robin", trunc(q.Policy))
	}
	if q.Among, err = intParam(v, "among", DefaultAmong, 1, MaxAmong); err != nil {
		return PickQuery{}, err
	}
	if q.Credentials, err = boolParam(v, "credentials"); err != nil {
		return PickQuery{}, err
	}
	return q, nil
}

// HistoryQuery is what the history parameters ask for.
type HistoryQuery struct {
	Addr        string
	Filter      pool.HistoryFilter
	Credentials bool
}

// ParseHistory reads the address (host:port) and the parameters of GET
// /api/v1/proxies/{addr}/history at time now. scheme selects one entry of the address; an
// empty scheme= selects the bare host:port one.
func ParseHistory(addr string, v url.Values, now time.Time) (HistoryQuery, error) {
	if err := known(v, historyParams); err != nil {
		return HistoryQuery{}, err
	}
	q := HistoryQuery{}
	var err error
	if q.Addr, err = ParseAddr(addr); err != nil {
		return HistoryQuery{}, err
	}
	if _, ok := v["scheme"]; ok {
		s := strings.ToLower(strings.TrimSpace(v.Get("scheme")))
		if s != "" && !proxy.Scheme(s).Valid() {
			return HistoryQuery{}, paramErr("scheme", "%q is not one of %s, or empty for a bare host:port", trunc(s), strings.Join(protocolNames(), ", "))
		}
		q.Filter.Scheme = &s
	}
	within, err := durationParam(v, "since", time.Second)
	if err != nil {
		return HistoryQuery{}, err
	}
	if within > 0 {
		q.Filter.Since = now.Add(-within)
	}
	if q.Filter.Limit, err = intParam(v, "limit", HistoryLimit, 1, MaxHistory); err != nil {
		return HistoryQuery{}, err
	}
	if q.Credentials, err = boolParam(v, "credentials"); err != nil {
		return HistoryQuery{}, err
	}
	return q, nil
}

// ParseAddr checks a proxy address as the pool keys it, host:port (IPv6 in brackets), and returns
// it in the pool's canonical form (proxy.Parse's: IP addresses as netip writes them, names
// lower-cased).
func ParseAddr(s string) (string, error) {
	p, err := proxy.Parse(s)
	if err != nil || p.Scheme != proxy.Unknown || p.User != "" || p.Password != "" || strings.Contains(s, "@") {
		return "", paramErr("addr", "%q: want host:port (IPv6 in brackets: [2001:db8::1]:8080)", trunc(s))
	}
	return p.Addr(), nil
}

// trunc shortens a value quoted in an error message.
func trunc(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
