package pool_test

import (
	"context"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/internal/pool"
	"github.com/proxyline/proxyline/proxy"
)

// TestSourceYields: sightings joined with the current results give each source's yield, and
// geo rows are kept by address.
func TestSourceYields(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openDB(t)
	a := proxy.Proxy{Scheme: proxy.HTTP, Host: "1.1.1.1", Port: 80}
	b := proxy.Proxy{Host: "2.2.2.2", Port: 1080} // bare: the pool keys it with scheme ""
	c := proxy.Proxy{Scheme: proxy.SOCKS5, Host: "3.3.3.3", Port: 1080}
	t0 := time.UnixMilli(1_000_000)
	if err := pool.RecordSightings(ctx, db, []pool.Sighting{
		{Source: "s1", Proxy: a, Seen: t0}, {Source: "s1", Proxy: b, Seen: t0},
		{Source: "s2", Proxy: b, Seen: t0}, {Source: "s2", Proxy: c, Seen: t0},
	}); err != nil {
		t.Fatal(err)
	}
	if err := pool.RecordSightings(ctx, db, []pool.Sighting{{Source: "s1", Proxy: a, Seen: t0.Add(time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	bAsChecked := b
	bAsChecked.Scheme = proxy.SOCKS5
	if err := pool.Record(ctx, db, pool.Source{JobID: 1, Attempt: 1, Worker: "w"}, []pool.Check{
		{Given: a, Result: check.Result{Proxy: a, Class: check.Refused, CheckedAt: now}},
		{Given: b, Result: check.Result{Proxy: bAsChecked, Class: check.Alive, CheckedAt: now}},
	}); err != nil {
		t.Fatal(err)
	}
	ys, err := pool.SourceYields(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	want := []pool.SourceYield{
		{Source: "s1", Candidates: 2, Checked: 2, Alive: 1, LastSeen: t0.Add(time.Hour).UTC()},
		{Source: "s2", Candidates: 2, Checked: 1, Alive: 1, LastSeen: t0.UTC()},
	}
	if len(ys) != 2 || ys[0] != want[0] || ys[1] != want[1] {
		t.Fatalf("yields = %+v\nwant %+v", ys, want)
	}
	if err := pool.RecordGeo(ctx, db, []pool.Geo{{Addr: a.Addr(), Country: "DE", City: "Berlin", ASN: 3320, ASOrg: "DTAG"}}, now); err != nil {
		t.Fatal(err)
	}
	if err := pool.RecordGeo(ctx, db, []pool.Geo{{Addr: a.Addr(), Country: "FR"}}, now); err != nil {
		t.Fatal(err)
	}
	g, err := pool.GeoByAddr(ctx, db)
	if err != nil || len(g) != 1 || g[a.Addr()].Country != "FR" {
		t.Fatalf("geo = %+v, %v", g, err)
	}
}
