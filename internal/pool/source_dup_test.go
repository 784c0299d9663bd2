package pool_test

import (
	"context"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/pool"
	"github.com/proxyline/proxyline/internal/testdb"
	"github.com/proxyline/proxyline/proxy"
)

// TestRecordSourcesSameKeyTwice: one address listed with two schemes (one geo row), and one proxy
// listed with two sets of credentials (one sighting key), in one batch. PostgreSQL refuses an
// upsert that touches a row twice; scrape --enqueue failed on it before anything was enqueued.
func TestRecordSourcesSameKeyTwice(t *testing.T) {
	t.Parallel()
	for _, engine := range testdb.Engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			st := testdb.Open(t, engine)
			ctx := context.Background()
			a := proxy.Proxy{Scheme: proxy.HTTP, Host: "10.1.1.1", Port: 8080}
			b := a
			b.Scheme = proxy.SOCKS5
			aAuth := a
			aAuth.User, aAuth.Password = "u", "p"
			t0 := time.UnixMilli(1_000_000)
			if err := pool.RecordSightings(ctx, st.DB(), []pool.Sighting{
				{Source: "s", Proxy: a, Seen: t0}, {Source: "s", Proxy: aAuth, Seen: t0.Add(time.Second)}, {Source: "s", Proxy: b, Seen: t0},
			}); err != nil {
				t.Fatal(err)
			}
			if err := pool.RecordGeo(ctx, st.DB(), []pool.Geo{
				{Addr: a.Addr(), Country: "DE"}, {Addr: b.Addr(), Country: "FR"},
			}, t0); err != nil {
				t.Fatal(err)
			}
			ys, err := pool.SourceYields(ctx, st.DB())
			if err != nil || len(ys) != 1 || ys[0].Candidates != 2 || !ys[0].LastSeen.Equal(t0.Add(time.Second)) {
				t.Errorf("yields %+v %v; want 2 candidates of source s, last seen %v", ys, err, t0.Add(time.Second))
			}
			g, err := pool.GeoByAddr(ctx, st.DB())
			if err != nil || len(g) != 1 || g[a.Addr()].Country != "FR" {
				t.Errorf("geo %+v %v; want the last one, FR", g, err)
			}
		})
	}
}
