package pool

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/proxyline/proxyline/proxy"
)

// Sighting is a source naming a proxy, as the scraper found it.
type Sighting struct {
	Source string
	Proxy  proxy.Proxy // as given to the queue: its Addr and Scheme are the pool's key
	Seen   time.Time
}

// RecordSightings remembers which source named which proxy (first and last time seen). Sightings
// of one key (source, address and scheme: the same proxy with other credentials) are one row, the
// last one's time: PostgreSQL refuses a statement that would update a row twice.
func RecordSightings(ctx context.Context, db DB, ss []Sighting) error {
	ss = lastByKey(ss, func(s Sighting) string { return s.Source + "|" + s.Proxy.Addr() + "|" + string(s.Proxy.Scheme) })
	for i := 0; i < len(ss); i += batchRows {
		part := ss[i:min(i+batchRows, len(ss))]
		var b strings.Builder
		args := make([]any, 0, len(part)*5)
		b.WriteString(`INSERT INTO proxyline_source_proxy (source, addr, scheme, first_seen, last_seen) VALUES `)
		for j, s := range part {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString("(?, ?, ?, ?, ?)")
			at := s.Seen.UnixMilli()
			args = append(args, s.Source, s.Proxy.Addr(), string(s.Proxy.Scheme), at, at)
		}
		// last_seen never goes back: a sighting recorded late keeps the newer time (and the source's
		// counted last_seen, a running maximum, stays the maximum of the rows).
		b.WriteString(` ON CONFLICT (source, addr, scheme) DO UPDATE SET last_seen = CASE
			WHEN excluded.last_seen > proxyline_source_proxy.last_seen THEN excluded.last_seen
			ELSE proxyline_source_proxy.last_seen END`)
		if _, err := db.Exec(ctx, b.String(), args...); err != nil {
			return fmt.Errorf("record sources (%d rows): %w", len(part), err)
		}
	}
	return nil
}

// SourceYield is what one source's proxies turned out to be, once checked.
type SourceYield struct {
	Source     string    `json:"source"`
	Candidates int64     `json:"candidates"` // proxies it named
	Checked    int64     `json:"checked"`    // of which the pool has a result
	Alive      int64     `json:"alive"`      // of which the last result is alive
	LastSeen   time.Time `json:"last_seen"`
}

// Geo is what the scraper's MaxMind databases say of a proxy's address.
type Geo struct {
	Addr    string `json:"-"`
	Country string `json:"country,omitempty"`
	City    string `json:"city,omitempty"`
	ASN     int64  `json:"asn,omitempty"`
	ASOrg   string `json:"as_org,omitempty"`
}

// RecordGeo stores (or replaces) the geo information of addresses. An address given twice (a
// proxy listed with two schemes) gets the last one.
func RecordGeo(ctx context.Context, db DB, gs []Geo, at time.Time) error {
	gs = lastByKey(gs, func(g Geo) string { return g.Addr })
	for i := 0; i < len(gs); i += batchRows {
		part := gs[i:min(i+batchRows, len(gs))]
		var b strings.Builder
		args := make([]any, 0, len(part)*6)
		b.WriteString(`INSERT INTO proxyline_geo (addr, country, city, asn, as_org, updated_at) VALUES `)
		for j, g := range part {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString("(?, ?, ?, ?, ?, ?)")
			args = append(args, g.Addr, g.Country, g.City, g.ASN, g.ASOrg, at.UnixMilli())
		}
		b.WriteString(` ON CONFLICT (addr) DO UPDATE SET country = excluded.country, city = excluded.city,
			asn = excluded.asn, as_org = excluded.as_org, updated_at = excluded.updated_at`)
		if _, err := db.Exec(ctx, b.String(), args...); err != nil {
			return fmt.Errorf("record geo (%d rows): %w", len(part), err)
		}
	}
	return nil
}

// GeoByAddr returns the geo information the pool has, by host:port.
func GeoByAddr(ctx context.Context, db DB) (map[string]Geo, error) {
	rows, err := db.Query(ctx, `SELECT addr, country, city, asn, as_org FROM proxyline_geo`)
	if err != nil {
		return nil, fmt.Errorf("read geo: %w", err)
	}
	defer rows.Close()
	out := map[string]Geo{}
	for rows.Next() {
		var g Geo
		if err := rows.Scan(&g.Addr, &g.Country, &g.City, &g.ASN, &g.ASOrg); err != nil {
			return nil, fmt.Errorf("read geo: %w", err)
		}
		out[g.Addr] = g
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read geo: %w", err)
	}
	return out, nil
}

// lastByKey returns xs with one element per key, the last of each, in the order of their first
// appearance.
func lastByKey[T any](xs []T, key func(T) string) []T {
	index := make(map[string]int, len(xs))
	out := make([]T, 0, len(xs))
	for _, x := range xs {
		k := key(x)
		if i, ok := index[k]; ok {
			out[i] = x
			continue
		}
		index[k] = len(out)
		out = append(out, x)
	}
	return out
}
