package api

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/proxyline/proxyline/internal/pool"
	"github.com/proxyline/proxyline/proxy"
)

// Proxy is one proxy of the pool as the API writes it: the field names of `proxyline check`'s
// and `export`'s JSON lines, plus the pool's key, the job and the geo information.
type Proxy struct {
	Proxy     string    `json:"proxy"`  // scheme://[user:xxxxx@]host:port, password masked unless asked
	Addr      string    `json:"addr"`   // host:port
	Scheme    string    `json:"scheme"` // as given ("" for a bare host:port): with addr, the pool's key
	Protocol  string    `json:"protocol"`
	Class     string    `json:"class"`
	Error     string    `json:"error,omitempty"`
	ExitIP    string    `json:"exit_ip,omitempty"`
	Anonymity string    `json:"anonymity,omitempty"`
	ConnectMS int64     `json:"connect_ms"`
	TotalMS   int64     `json:"total_ms"`
	CheckedAt time.Time `json:"checked_at"`
	JobID     int64     `json:"job_id"`
	Country   string    `json:"country,omitempty"`
	City      string    `json:"city,omitempty"`
	ASN       int64     `json:"asn,omitempty"`
	ASOrg     string    `json:"as_org,omitempty"`
}

// ProxyOf returns the API form of a pool row; its password is masked unless credentials.
func ProxyOf(f pool.Found, credentials bool) Proxy {
	return Proxy{
		Proxy: Display(f.Proxy, credentials), Addr: f.Addr, Scheme: f.Scheme, Protocol: f.Protocol,
		Class: string(f.Class), Error: f.Err, ExitIP: f.ExitIP, Anonymity: string(f.Anonymity),
		ConnectMS: f.Connect.Milliseconds(), TotalMS: f.Total.Milliseconds(), CheckedAt: f.CheckedAt,
		JobID: f.JobID, Country: f.Geo.Country, City: f.Geo.City, ASN: f.Geo.ASN, ASOrg: f.Geo.ASOrg,
	}
}

// Display returns a proxy as the pool stores it (scheme://user:pass@host:port, or
// host:port:user:pass for a bare one), its password masked unless credentials. A value that does
// not parse is reduced to what cannot hold a password.
func Display(stored string, credentials bool) string {
	if credentials {
		return stored
	}
	p, err := proxy.Parse(stored)
	if err != nil {
		return "(unreadable proxy)"
	}
	return p.Redacted()
}

// Page is the answer of GET /api/v1/proxies.
type Page struct {
	Proxies []Proxy `json:"proxies"`
	Count   int     `json:"count"`
	// NextCursor continues the listing (pass it as cursor); "" on the last page.
	NextCursor string `json:"next_cursor"`
}

func (s *Server) proxies(w http.ResponseWriter, r *http.Request) error {
	q, err := ParseQuery(r.URL.Query(), s.cfg.Now())
	if err != nil {
		return err
	}
	creds, err := s.credentials(r, q.Credentials)
	if err != nil {
		return err
	}
	page, err := pool.Find(r.Context(), s.cfg.Store.DB(), q.Filter)
	if err != nil {
		return err
	}
	out := Page{Proxies: make([]Proxy, 0, len(page.Proxies)), NextCursor: EncodeCursor(page.Next)}
	for _, f := range page.Proxies {
		out.Proxies = append(out.Proxies, ProxyOf(f, creds))
	}
	out.Count = len(out.Proxies)
	writeJSON(w, http.StatusOK, out)
	return nil
}

// Check is one check of a proxy's history.
type Check struct {
	CheckedAt time.Time `json:"checked_at"`
	Scheme    string    `json:"scheme"`
	Protocol  string    `json:"protocol"`
	Class     string    `json:"class"`
	Error     string    `json:"error,omitempty"`
	ExitIP    string    `json:"exit_ip,omitempty"`
	Anonymity string    `json:"anonymity,omitempty"`
	ConnectMS int64     `json:"connect_ms"`
	TotalMS   int64     `json:"total_ms"`
	JobID     int64     `json:"job_id"`
	Attempt   int       `json:"attempt"`
	Worker    string    `json:"worker"`
}

// CheckOf returns the API form of a history row.
func CheckOf(p pool.Past) Check {
	return Check{CheckedAt: p.CheckedAt, Scheme: p.Scheme, Protocol: p.Protocol, Class: string(p.Class), Error: p.Err,
		ExitIP: p.ExitIP, Anonymity: string(p.Anonymity), ConnectMS: p.Connect.Milliseconds(), TotalMS: p.Total.Milliseconds(),
		JobID: p.JobID, Attempt: p.Attempt, Worker: p.Worker}
}

// History is the answer of GET /api/v1/proxies/{addr}/history.
type History struct {
	Addr    string  `json:"addr"`
	Current []Proxy `json:"current"` // the address's pool entries, one per scheme it was given with
	History []Check `json:"history"` // newest first
}

func (s *Server) history(w http.ResponseWriter, r *http.Request) error {
	q, err := ParseHistory(r.PathValue("addr"), r.URL.Query(), s.cfg.Now())
	if err != nil {
		return err
	}
	creds, err := s.credentials(r, q.Credentials)
	if err != nil {
		return err
	}
	h, err := ReadHistory(r.Context(), s.cfg.Store.DB(), q, creds)
	if err != nil {
		return err
	}
	if len(h.Current) == 0 && len(h.History) == 0 {
		return statusError(http.StatusNotFound, fmt.Sprintf("no proxy %s in the pool", q.Addr))
	}
	writeJSON(w, http.StatusOK, h)
	return nil
}

// ReadHistory reads the current rows and the history q asks for (the web UI's proxy page too).
func ReadHistory(ctx context.Context, db pool.DB, q HistoryQuery, credentials bool) (History, error) {
	cur, err := pool.Lookup(ctx, db, q.Addr)
	if err != nil {
		return History{}, err
	}
	past, err := pool.History(ctx, db, q.Addr, q.Filter)
	if err != nil {
		return History{}, err
	}
	h := History{Addr: q.Addr, Current: []Proxy{}, History: make([]Check, 0, len(past))}
	for _, f := range cur {
		if q.Filter.Scheme == nil || *q.Filter.Scheme == f.Scheme {
			h.Current = append(h.Current, ProxyOf(f, credentials))
		}
	}
	for _, p := range past {
		h.History = append(h.History, CheckOf(p))
	}
	return h, nil
}

func (s *Server) pick(w http.ResponseWriter, r *http.Request) error {
	q, err := ParsePick(r.URL.Query(), s.cfg.Now())
	if err != nil {
		return err
	}
	creds, err := s.credentials(r, q.Credentials)
	if err != nil {
		return err
	}
	f := q.Filter
	f.Limit = q.Among
	if q.Policy == PolicyFastest {
		f.Limit = 1
	}
	page, err := pool.Find(r.Context(), s.cfg.Store.DB(), f)
	if err != nil {
		return err
	}
	n := len(page.Proxies)
	if n == 0 {
		return statusError(http.StatusNotFound, "no live proxy matches the filters")
	}
	i := 0
	switch q.Policy {
	case PolicyRandom:
		i = rand.IntN(n)
	case PolicyRoundRobin:
		i = int((s.rr.Add(1) - 1) % uint64(n))
	}
	writeJSON(w, http.StatusOK, ProxyOf(page.Proxies[i], creds))
	return nil
}
