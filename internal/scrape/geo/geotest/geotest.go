// Package geotest writes small MaxMind-format databases for tests, with
// github.com/maxmind/mmdbwriter: a City database and an ASN database mapping networks to what
// the test says.
package geotest

import (
	"fmt"
	"net"
	"os"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// Net is one network and what the databases say of it.
type Net struct {
	CIDR    string // "127.0.0.0/24"
	Country string // ISO code
	City    string
	ASN     uint32
	ASOrg   string
}

// Write writes GeoLite2-City and GeoLite2-ASN databases to cityPath and asnPath.
func Write(cityPath, asnPath string, nets []Net) error {
	city, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoLite2-City", IncludeReservedNetworks: true, RecordSize: 24})
	if err != nil {
		return err
	}
	asn, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoLite2-ASN", IncludeReservedNetworks: true, RecordSize: 24})
	if err != nil {
		return err
	}
	for _, n := range nets {
		_, ipn, err := net.ParseCIDR(n.CIDR)
		if err != nil {
			return err
		}
		if err := city.Insert(ipn, mmdbtype.Map{
			"country": mmdbtype.Map{"iso_code": mmdbtype.String(n.Country)},
			"city":    mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String(n.City)}},
		}); err != nil {
			return fmt.Errorf("city %s: %w", n.CIDR, err)
		}
		if err := asn.Insert(ipn, mmdbtype.Map{
			"autonomous_system_number":       mmdbtype.Uint32(n.ASN),
			"autonomous_system_organization": mmdbtype.String(n.ASOrg),
		}); err != nil {
			return fmt.Errorf("asn %s: %w", n.CIDR, err)
		}
	}
	for path, t := range map[string]*mmdbwriter.Tree{cityPath: city, asnPath: asn} {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		if _, err := t.WriteTo(f); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	return nil
}
