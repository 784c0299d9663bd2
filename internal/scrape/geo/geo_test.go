package geo

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/proxyline/proxyline/internal/scrape/geo/geotest"
	"github.com/proxyline/proxyline/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

func TestLookup(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	city, asn := filepath.Join(dir, "city.mmdb"), filepath.Join(dir, "asn.mmdb")
	if err := geotest.Write(city, asn, []geotest.Net{
		{CIDR: "127.0.0.0/25", Country: "DE", City: "Berlin", ASN: 3320, ASOrg: "Deutsche Telekom AG"},
		{CIDR: "2001:db8::/32", Country: "FR", City: "Paris", ASN: 3215, ASOrg: "Orange"},
	}); err != nil {
		t.Fatal(err)
	}
	db, err := Open(city, asn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for host, want := range map[string]Info{
		"127.0.0.3":   {Country: "DE", City: "Berlin", ASN: 3320, ASOrg: "Deutsche Telekom AG"},
		"2001:db8::1": {Country: "FR", City: "Paris", ASN: 3215, ASOrg: "Orange"},
		"127.0.0.200": {},
		"example.com": {},
	} {
		if got := db.Lookup(host); got != want {
			t.Errorf("Lookup(%s) = %+v, want %+v", host, got, want)
		}
	}
	if _, err := Open(asn, ""); err == nil || !strings.Contains(err.Error(), "GeoLite2-ASN") {
		t.Errorf("an ASN database given as the city one: %v", err)
	}
	if _, err := Open(filepath.Join(dir, "nope.mmdb"), ""); err == nil {
		t.Error("missing file: no error")
	}
	var none *DB
	if !none.Lookup("127.0.0.3").IsZero() {
		t.Error("nil DB must know nothing")
	}
}
