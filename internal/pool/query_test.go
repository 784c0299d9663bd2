package pool_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/internal/pool"
	"github.com/proxyline/proxyline/internal/testdb"
	"github.com/proxyline/proxyline/proxy"
)

// fixture is a small pool with every attribute a filter looks at.
type fixture struct {
	name     string
	p        proxy.Proxy // as given
	scheme   proxy.Scheme
	class    check.Class
	anon     check.Anonymity
	totalMS  int
	age      time.Duration // how long before now it was checked
	country  string
	previous []check.Class // older checks, oldest first
}

var fixtures = []fixture{
	{name: "a", p: px(proxy.HTTP, "10.0.0.1", 8080), scheme: proxy.HTTP, class: check.Alive, anon: check.Elite, totalMS: 50, age: time.Minute, country: "DE", previous: []check.Class{check.Timeout, check.Alive}},
	{name: "b", p: px(proxy.SOCKS5, "10.0.0.2", 1080), scheme: proxy.SOCKS5, class: check.Alive, anon: check.Anonymous, totalMS: 120, age: 2 * time.Hour, country: "FR"},
	{name: "c", p: px(proxy.Unknown, "10.0.0.3", 3128), scheme: proxy.HTTP, class: check.Alive, anon: check.Transparent, totalMS: 300, age: 3 * 24 * time.Hour, country: "DE"},
	{name: "d", p: px(proxy.SOCKS4, "10.0.0.4", 1080), scheme: proxy.SOCKS4, class: check.Alive, anon: check.Elite, totalMS: 120, age: time.Minute},
	{name: "e", p: px(proxy.HTTP, "10.0.0.5", 80), scheme: proxy.HTTP, class: check.Refused, totalMS: 3, age: time.Minute, country: "US"},
	{name: "f", p: px(proxy.Unknown, "10.0.0.6", 80), class: check.Timeout, totalMS: 10_000, age: time.Hour},
	{name: "g", p: withAuth(px(proxy.SOCKS5, "[2001:db8::1]", 1080)), scheme: proxy.SOCKS5, class: check.Alive, anon: check.Elite, totalMS: 80, age: time.Minute, country: "NL"},
	// The same address as a, given bare: another pool entry.
	{name: "a2", p: px(proxy.Unknown, "10.0.0.1", 8080), scheme: proxy.HTTP, class: check.Alive, anon: check.Elite, totalMS: 50, age: 5 * time.Minute, country: "DE"},
}

func px(s proxy.Scheme, host string, port uint16) proxy.Proxy {
	if host[0] == '[' {
		host = host[1 : len(host)-1]
	}
	return proxy.Proxy{Scheme: s, Host: host, Port: port}
}

func withAuth(p proxy.Proxy) proxy.Proxy { p.User, p.Password = "u", "secret-pw"; return p }

// fill records the fixtures (their history first) at now.
func fill(t *testing.T, db pool.DB, now time.Time) {
	t.Helper()
	ctx := context.Background()
	var geo []pool.Geo
	for i, f := range fixtures {
		found := f.p
		found.Scheme = f.scheme
		at := now.Add(-f.age)
		for j, c := range f.previous {
			r := check.Result{Proxy: found, Class: c, CheckedAt: at.Add(-time.Duration(len(f.previous)-j) * time.Hour), Total: time.Second}
			if err := pool.Record(ctx, db, pool.Source{JobID: int64(1000 + j), Attempt: 1, Worker: "w"}, []pool.Check{{Given: f.p, Result: r}}); err != nil {
				t.Fatal(err)
			}
		}
		r := check.Result{Proxy: found, Class: f.class, Anonymity: f.anon, CheckedAt: at, Total: time.Duration(f.totalMS) * time.Millisecond,
			Connect: time.Millisecond}
		if f.class != check.Alive {
			r.Err = string(f.class) + " here"
		}
		if err := pool.Record(ctx, db, pool.Source{JobID: int64(1 + i), Attempt: 1, Worker: "w"}, []pool.Check{{Given: f.p, Result: r}}); err != nil {
			t.Fatal(err)
		}
		if f.country != "" {
			geo = append(geo, pool.Geo{Addr: f.p.Addr(), Country: f.country, City: "C", ASN: 7})
		}
	}
	if err := pool.RecordGeo(ctx, db, geo, now); err != nil {
		t.Fatal(err)
	}
}

func names(ps []pool.Found) []string {
	var out []string
	for _, p := range ps {
		for _, f := range fixtures {
			if f.p.Addr() == p.Addr && string(f.p.Scheme) == p.Scheme {
				out = append(out, f.name)
			}
		}
	}
	return out
}

func TestFind(t *testing.T) {
	t.Parallel()
	for _, engine := range testdb.Engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			st := testdb.Open(t, engine)
			now := time.Now()
			fill(t, st.DB(), now)
			ctx := context.Background()
			tests := []struct {
				name string
				f    pool.Filter
				want []string
			}{
				// Fastest first; ties by address (10.0.0.1 < 10.0.0.4 as text), then scheme ("" < "http").
				{"alive by default", pool.Filter{}, []string{"a2", "a", "g", "b", "d", "c"}},
				{"protocol", pool.Filter{Protocols: []string{"socks5"}}, []string{"g", "b"}},
				{"protocols", pool.Filter{Protocols: []string{"socks5", "socks4"}}, []string{"g", "b", "d"}},
				{"country", pool.Filter{Countries: []string{"DE"}}, []string{"a2", "a", "c"}},
				{"countries", pool.Filter{Countries: []string{"FR", "NL"}}, []string{"g", "b"}},
				{"anonymity", pool.Filter{Anonymity: []check.Anonymity{check.Elite}}, []string{"a2", "a", "g", "d"}},
				{"max latency", pool.Filter{MaxLatency: 100 * time.Millisecond}, []string{"a2", "a", "g"}},
				{"checked since", pool.Filter{CheckedSince: now.Add(-3 * time.Minute)}, []string{"a", "g", "d"}},
				{"every class", pool.Filter{AnyClass: true}, []string{"a2", "a", "g", "b", "d", "c", "e", "f"}},
				{"two classes", pool.Filter{Classes: []check.Class{check.Timeout, check.Refused}}, []string{"e", "f"}},
				{"one dead class", pool.Filter{Classes: []check.Class{check.Refused}}, []string{"e"}},
				{"everything at once", pool.Filter{Protocols: []string{"http"}, Countries: []string{"DE"}, Anonymity: []check.Anonymity{check.Elite},
					MaxLatency: time.Second, CheckedSince: now.Add(-2 * time.Minute)}, []string{"a"}},
				{"nothing", pool.Filter{Countries: []string{"JP"}}, nil},
			}
			for _, tt := range tests {
				page, err := pool.Find(ctx, st.DB(), tt.f)
				if err != nil {
					t.Fatalf("%s: %v", tt.name, err)
				}
				if got := names(page.Proxies); !slices.Equal(got, tt.want) {
					t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
				}
				if !page.Next.IsZero() {
					t.Errorf("%s: a next page after the last", tt.name)
				}
				// Page by page, one or two rows at a time: the same rows in the same order.
				for _, limit := range []int{1, 2} {
					f := tt.f
					f.Limit = limit
					var all []pool.Found
					for pages := 0; ; pages++ {
						p, err := pool.Find(ctx, st.DB(), f)
						if err != nil {
							t.Fatalf("%s page %d: %v", tt.name, pages, err)
						}
						if len(p.Proxies) > limit || pages > 20 {
							t.Fatalf("%s: %d rows on a page of %d, page %d", tt.name, len(p.Proxies), limit, pages)
						}
						all = append(all, p.Proxies...)
						if p.Next.IsZero() {
							break
						}
						f.After = p.Next
					}
					if got := names(all); !slices.Equal(got, tt.want) {
						t.Errorf("%s by pages of %d: got %v, want %v", tt.name, limit, got, tt.want)
					}
				}
			}
			page, err := pool.Find(ctx, st.DB(), pool.Filter{Countries: []string{"NL"}})
			if err != nil || len(page.Proxies) != 1 {
				t.Fatalf("NL: %v %v", page, err)
			}
			g := page.Proxies[0]
			if g.Proxy != "socks5://u:secret-pw@[2001:db8::1]:1080" || g.Geo.Country != "NL" || g.Geo.ASN != 7 || g.Anonymity != check.Elite {
				t.Errorf("row %+v", g)
			}
			if _, err := pool.Find(ctx, st.DB(), pool.Filter{Limit: pool.MaxLimit + 1}); err == nil {
				t.Error("a limit above MaxLimit was accepted")
			}
		})
	}
}

func TestHistoryLookupSizes(t *testing.T) {
	t.Parallel()
	for _, engine := range testdb.Engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			st := testdb.Open(t, engine)
			now := time.Now()
			fill(t, st.DB(), now)
			ctx := context.Background()
			addr := "10.0.0.1:8080"
			hs, err := pool.History(ctx, st.DB(), addr, pool.HistoryFilter{})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for i, h := range hs {
				got = append(got, h.Scheme+":"+string(h.Class))
				if i > 0 && h.CheckedAt.After(hs[i-1].CheckedAt) {
					t.Errorf("history not newest first at %d", i)
				}
			}
			// a (http) now, a2 (bare) 5 minutes ago, then a's two older checks.
			if want := []string{"http:alive", ":alive", "http:alive", "http:timeout"}; !slices.Equal(got, want) {
				t.Errorf("history %v, want %v", got, want)
			}
			bare := ""
			hs, err = pool.History(ctx, st.DB(), addr, pool.HistoryFilter{Scheme: &bare})
			if err != nil || len(hs) != 1 || hs[0].Scheme != "" || hs[0].Protocol != "http" {
				t.Errorf("bare history %+v %v", hs, err)
			}
			hs, err = pool.History(ctx, st.DB(), addr, pool.HistoryFilter{Since: now.Add(-10 * time.Minute), Limit: 1})
			if err != nil || len(hs) != 1 || hs[0].Scheme != "http" {
				t.Errorf("limited history %+v %v", hs, err)
			}
			if hs, err := pool.History(ctx, st.DB(), "10.9.9.9:1", pool.HistoryFilter{}); err != nil || len(hs) != 0 {
				t.Errorf("history of an unknown proxy: %+v %v", hs, err)
			}

			cur, err := pool.Lookup(ctx, st.DB(), addr)
			if err != nil || len(cur) != 2 || cur[0].Scheme != "" || cur[1].Scheme != "http" || cur[1].Geo.Country != "DE" {
				t.Errorf("lookup %+v %v", cur, err)
			}

			sizes, err := pool.Size(ctx, st.DB())
			if err != nil {
				t.Fatal(err)
			}
			count := map[string]int64{}
			var total int64
			for c, n := range sizes.ByClass {
				total += n
				count[string(c)] = n
			}
			for _, l := range sizes.Live {
				count["alive/"+l.Protocol+"/"+string(l.Anonymity)] = l.Proxies
			}
			if total != int64(len(fixtures)) || count["alive"] != 6 || count["timeout"] != 1 || count["refused"] != 1 ||
				count["alive/http/elite"] != 2 || count["alive/socks5/elite"] != 1 || count["alive/http/transparent"] != 1 || len(sizes.Live) != 5 {
				t.Errorf("sizes %v (live %+v)", count, sizes.Live)
			}
		})
	}
}
