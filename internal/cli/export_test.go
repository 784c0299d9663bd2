package cli

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/internal/pool"
	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/internal/testdb"
	"github.com/proxyline/proxyline/proxy"
)

// TestExportTextAsParsed: export's text format writes the pool's stored proxy strings as they are;
// the output must be what parsing and formatting each one gave (the way it was written before),
// on both engines, for proxies of every scheme, with credentials that need escaping, IPv6 hosts,
// bare proxies whose protocol the check found, and dead ones (left out).
func TestExportTextAsParsed(t *testing.T) {
	t.Parallel()
	for _, engine := range testdb.Engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := testdb.Database(t, engine)
			st := testdb.OpenAt(t, db, queue.Migrate)
			now := time.Now().Add(-time.Minute)
			var cs []pool.Check
			lines := []string{"http://10.0.0.1:8080", "socks5://u%40x:p%3Ass@10.0.0.2:1080", "socks4://10.0.0.3:1080",
				"https://user:pass@[2001:db8::1]:443", "10.0.0.5:3128", "socks4a://10.0.0.6:1080", "http://a.example:80"}
			for i, line := range lines {
				given, err := proxy.Parse(line)
				if err != nil {
					t.Fatal(err)
				}
				found := given
				if found.Scheme == proxy.Unknown {
					found.Scheme = proxy.SOCKS5
				}
				class := check.Alive
				if i == 2 {
					class = check.Timeout
				}
				cs = append(cs, pool.Check{Given: given, Result: check.Result{Proxy: found, Class: class, Anonymity: check.Elite,
					Total: time.Duration(len(lines)-i) * time.Millisecond, CheckedAt: now}})
			}
			if err := pool.Record(ctx, st.DB(), pool.Source{JobID: 1, Attempt: 1, Worker: "t"}, cs); err != nil {
				t.Fatal(err)
			}
			es, err := pool.List(ctx, st.DB(), false)
			if err != nil {
				t.Fatal(err)
			}
			var want strings.Builder
			for _, e := range es {
				p, err := proxy.Parse(e.Proxy)
				if err != nil {
					t.Fatal(err)
				}
				fmt.Fprintln(&want, p.String())
			}
			var out, errOut bytes.Buffer
			if code := Main([]string{"export", "--database", db}, nil, &out, &errOut); code != 0 {
				t.Fatalf("export: exit %d: %s", code, errOut.String())
			}
			if out.String() != want.String() || len(es) != len(lines)-1 {
				t.Errorf("export wrote\n%s\nparsed and formatted, %d live proxies:\n%s", out.String(), len(es), want.String())
			}
		})
	}
}
