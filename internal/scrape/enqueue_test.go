package scrape

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/proxyline/proxyline/internal/lab"
	"github.com/proxyline/proxyline/internal/pool"
	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/internal/scrape/geo/geotest"
)

// TestEnqueueWithGeo: --enqueue puts the candidates on the queue as check jobs, and the pool
// learns which source named each (the per-source yield) and the geo information; the jsonl
// candidates output carries the geo columns.
func TestEnqueueWithGeo(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l := startLab(t, lab.Config{HTTP: 5, SOCKS5: 5, Sources: 2, Dir: filepath.Join(dir, "lab")})
	city, asn := filepath.Join(dir, "city.mmdb"), filepath.Join(dir, "asn.mmdb")
	if err := geotest.Write(city, asn, []geotest.Net{{CIDR: "127.0.0.0/16", Country: "DE", City: "Berlin", ASN: 64500, ASOrg: "Lab AS"}}); err != nil {
		t.Fatal(err)
	}
	o := opts()
	o.Config = filepath.Join(dir, "lab", "sources.toml")
	o.Enqueue, o.Judge.URL, o.Chunk = true, l.JudgeURL(), 3
	o.DB.Database = filepath.Join(dir, "q.db")
	o.GeoIPDB, o.ASNDB = city, asn
	o.Output, o.Format = filepath.Join(dir, "c.jsonl"), "jsonl"
	r := runScrape(t, context.Background(), o, nil)
	if r.err != nil || !strings.Contains(r.stdout.String(), "enqueued 4 jobs (10 proxies)") {
		t.Fatalf("%v\n%s\n%s", r.err, r.stdout, r.stderr)
	}
	b, _ := os.ReadFile(o.Output)
	if strings.Count(string(b), `"country":"DE","city":"Berlin","asn":64500,"as_org":"Lab AS"`) != 10 {
		t.Errorf("geo columns missing:\n%s", b)
	}
	st, err := queue.Open(context.Background(), queue.Config{Database: o.DB.Database})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s, err := st.Status(context.Background())
	if err != nil || s.Jobs["available"] != 4 {
		t.Fatalf("status %+v, %v", s, err)
	}
	ys, err := pool.SourceYields(context.Background(), st.DB())
	if err != nil || len(ys) != 2 || ys[0].Candidates+ys[1].Candidates != 10 || ys[0].Checked != 0 {
		t.Fatalf("yields %+v, %v", ys, err)
	}
	g, err := pool.GeoByAddr(context.Background(), st.DB())
	if err != nil || len(g) != 10 || g[l.Candidates()[0].Addr()].Country != "DE" {
		t.Fatalf("geo %+v, %v", g, err)
	}
}
