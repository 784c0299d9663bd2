// Package geo adds country, city and autonomous system to proxies from offline MaxMind-format
// databases the user supplies (GeoLite2/GeoIP2 City or Country, and ASN), read with
// github.com/oschwald/maxminddb-golang. Nothing is fetched: without a database there is no
// geo information.
package geo

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/oschwald/maxminddb-golang/v2"
)

// Info is what the databases say about one address. Zero fields are unknown.
type Info struct {
	Country string `json:"country,omitempty"` // ISO 3166-1 alpha-2, upper case
	City    string `json:"city,omitempty"`    // English name
	ASN     uint   `json:"asn,omitempty"`
	ASOrg   string `json:"as_org,omitempty"`
}

// IsZero reports whether nothing is known.
func (i Info) IsZero() bool { return i == Info{} }

// DB holds the open databases. Its methods are safe for concurrent use.
type DB struct {
	city, asn *maxminddb.Reader
}

// Open opens a City (or Country) database and an ASN database; either path may be empty.
func Open(cityPath, asnPath string) (*DB, error) {
	d := &DB{}
	var err error
	if cityPath != "" {
		if d.city, err = open(cityPath, "City", "Country"); err != nil {
			return nil, fmt.Errorf("--geoip-db: %w", err)
		}
	}
	if asnPath != "" {
		if d.asn, err = open(asnPath, "ASN"); err != nil {
			_ = d.Close()
			return nil, fmt.Errorf("--asn-db: %w", err)
		}
	}
	return d, nil
}

// open opens a database and checks its type names one of want (GeoLite2-City, GeoIP2-ASN...),
// so that swapped flags are caught at start rather than giving empty results.
func open(path string, want ...string) (*maxminddb.Reader, error) {
	r, err := maxminddb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	t := r.Metadata.DatabaseType
	for _, w := range want {
		if len(t) >= len(w) && t[len(t)-len(w):] == w {
			return r, nil
		}
	}
	_ = r.Close()
	return nil, fmt.Errorf("%s: database type %q, want one ending in %v", path, t, want)
}

// Close closes the databases.
func (d *DB) Close() error {
	var errs []error
	for _, r := range []*maxminddb.Reader{d.city, d.asn} {
		if r != nil {
			errs = append(errs, r.Close())
		}
	}
	return errors.Join(errs...)
}

type cityRecord struct {
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	City struct {
		Names map[string]string `maxminddb:"names"`
	} `maxminddb:"city"`
}

type asnRecord struct {
	Number uint   `maxminddb:"autonomous_system_number"`
	Org    string `maxminddb:"autonomous_system_organization"`
}

// Lookup returns what the databases know of host, an IP address (a host name gives nothing).
func (d *DB) Lookup(host string) Info {
	var info Info
	if d == nil {
		return info
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return info
	}
	if d.city != nil {
		var rec cityRecord
		if d.city.Lookup(ip).Decode(&rec) == nil {
			info.Country, info.City = rec.Country.ISOCode, rec.City.Names["en"]
		}
	}
	if d.asn != nil {
		var rec asnRecord
		if d.asn.Lookup(ip).Decode(&rec) == nil {
			info.ASN, info.ASOrg = rec.Number, rec.Org
		}
	}
	return info
}
