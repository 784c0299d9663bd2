package pool_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/pool"
	"github.com/proxyline/proxyline/internal/testdb"
)

// TestEachMatchesList compares Each, in every mode, with List and GeoByAddr (the reads export
// made before it streamed) on a random pool, on both engines.
func TestEachMatchesList(t *testing.T) {
	t.Parallel()
	for _, engine := range testdb.Engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			st := testdb.Open(t, engine)
			db := st.DB()
			ctx := context.Background()
			seed := uint64(time.Now().UnixNano())
			t.Logf("seed %d", seed)
			w := &workload{r: rand.New(rand.NewPCG(seed, 2)), now: time.Now()}
			for range 60 {
				if err := w.step(db); err != nil {
					t.Fatal(err)
				}
			}
			var geo []pool.Geo
			for i := range 60 {
				if w.r.IntN(4) > 0 {
					c := []string{"DE", "FR", "US"}[w.r.IntN(3)]
					geo = append(geo, pool.Geo{Addr: fmt.Sprintf("10.9.0.%d:8080", 1+i), Country: c, City: "C" + c, ASN: int64(i)})
				}
			}
			if err := pool.RecordGeo(ctx, db, geo, w.now); err != nil {
				t.Fatal(err)
			}
			geos, err := pool.GeoByAddr(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			for _, tc := range []pool.EachOptions{
				{}, {All: true}, {Countries: []string{"DE", "FR"}}, {All: true, Countries: []string{"US"}},
				{ProxyOnly: true}, {ProxyOnly: true, Countries: []string{"FR"}}, {Countries: []string{"ZZ"}},
			} {
				entries, err := pool.List(ctx, db, tc.All)
				if err != nil {
					t.Fatal(err)
				}
				var want []pool.Found
				for _, e := range entries {
					g := geos[e.Addr]
					if len(tc.Countries) > 0 && !slices.Contains(tc.Countries, g.Country) {
						continue
					}
					if g.Country == "" {
						g = pool.Geo{}
					}
					g.Addr = e.Addr
					if tc.ProxyOnly {
						want = append(want, pool.Found{Entry: pool.Entry{Proxy: e.Proxy, Class: e.Class}})
						continue
					}
					want = append(want, pool.Found{Entry: e, Geo: g})
				}
				var got []pool.Found
				if err := pool.Each(ctx, db, tc, func(f pool.Found) error { got = append(got, f); return nil }); err != nil {
					t.Fatal(err)
				}
				if len(want) == 0 && !slices.Contains(tc.Countries, "ZZ") {
					t.Fatalf("%+v: the random pool has no such rows: the test proves nothing", tc)
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%+v: Each gave %d rows, List %d:\n%+v\n%+v", tc, len(got), len(want), got, want)
				}
			}
		})
	}
}
