package cli

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/internal/lab"
	"github.com/proxyline/proxyline/internal/pool"
	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/internal/scrape/geo/geotest"
)

// runCmd runs "proxyline args..." in-process and returns exit code, stdout, stderr.
func runCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), &Env{Stdout: &stdout, Stderr: &stderr}, args)
	return code, stdout.String(), stderr.String()
}

// TestScrapeCommand: exit codes, and the per-source yield and geo reaching status and export
// after scrape --enqueue (the checks a worker would record are recorded directly here).
func TestScrapeCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l, err := lab.Start(context.Background(), lab.Config{HTTP: 3, Refused: 3, Sources: 2, Dir: filepath.Join(dir, "lab")})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := l.Stop(context.Background()); err != nil {
			t.Errorf("stop: %v", err)
		}
	}()
	if code, out, _ := runCmd(t, "scrape", "--print-config"); code != 0 || !strings.Contains(out, "[[source]]") {
		t.Errorf("--print-config: exit %d", code)
	}
	if code, _, _ := runCmd(t, "scrape", "--format", "xml", "x"); code != ExitUsage {
		t.Errorf("bad format: exit %d, want %d", code, ExitUsage)
	}
	if code, _, _ := runCmd(t, "scrape", "--no-cache", filepath.Join(dir, "lab", "truth.jsonl")); code != ExitOK {
		t.Errorf("a file with candidates: exit %d, want 0", code)
	}
	if code, _, _ := runCmd(t, "scrape", "--no-cache", filepath.Join(dir, "lab", "ca.pem")); code != ExitFailure {
		t.Errorf("nothing found: exit %d, want %d", code, ExitFailure)
	}
	city, asn := filepath.Join(dir, "c.mmdb"), filepath.Join(dir, "a.mmdb")
	if err := geotest.Write(city, asn, []geotest.Net{{CIDR: "127.0.0.0/24", Country: "DE", City: "Berlin", ASN: 64500}}); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "q.db")
	code, out, errOut := runCmd(t, "scrape", "--no-cache", "--config", filepath.Join(dir, "lab", "sources.toml"), "--enqueue",
		"--database", db, "--judge", l.JudgeURL(), "--geoip-db", city, "--asn-db", asn)
	if code != 0 || !strings.Contains(out, "enqueued 1 jobs (6 proxies)") {
		t.Fatalf("scrape --enqueue: exit %d\n%s\n%s", code, out, errOut)
	}
	st, err := queue.Open(context.Background(), queue.Config{Database: db})
	if err != nil {
		t.Fatal(err)
	}
	var checks []pool.Check
	for _, tr := range l.Truth() {
		c := check.Class(tr.Class)
		checks = append(checks, pool.Check{Given: tr.Proxy, Result: check.Result{Proxy: tr.Proxy, Class: c, CheckedAt: time.Now()}})
	}
	if err := pool.Record(context.Background(), st.DB(), pool.Source{JobID: 1, Attempt: 1, Worker: "test"}, checks); err != nil {
		t.Fatal(err)
	}
	st.Close()
	code, out, _ = runCmd(t, "status", "--database", db)
	if code != 0 || !strings.Contains(out, "sources   2") {
		t.Errorf("status: exit %d\n%s", code, out)
	}
	code, out, _ = runCmd(t, "export", "--database", db, "--sources", "--format", "csv")
	if code != 0 || !strings.Contains(out, "source,alive,checked,candidates") || strings.Count(out, "\n") != 3 {
		t.Errorf("export --sources: exit %d\n%s", code, out)
	}
	code, out, _ = runCmd(t, "export", "--database", db, "--country", "de", "--format", "jsonl")
	if code != 0 || strings.Count(out, `"country":"DE","city":"Berlin","asn":64500`) != 3 {
		t.Errorf("export --country de: exit %d\n%s", code, out)
	}
	code, out, _ = runCmd(t, "export", "--database", db, "--country", "FR")
	if code != 0 || out != "" {
		t.Errorf("export --country FR: exit %d\n%s", code, out)
	}
}
