package cli

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/lab"
	"github.com/proxyline/proxyline/internal/queue"
)

// TestJudgeCAEverywhere: --judge-ca means the same on every command. A job carries the CA's
// certificates (nothing else of the file), a worker checks through the lab's https judge with
// them alone, and a file holding a private key is refused before anything is written.
func TestJudgeCAEverywhere(t *testing.T) {
	t.Parallel()
	l, dir := startCheckLab(t, lab.Config{HTTP: 2, SOCKS5: 2, Refused: 1, Liar: 1, Sources: 1})
	ca := filepath.Join(dir, "ca.pem")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	withKey := writeTestFile(t, t.TempDir(), "with-key.pem", string(l.CAPEM())+string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})), 0o600)
	list := filepath.Join(dir, "candidates.txt")
	db := filepath.Join(t.TempDir(), "q.db")

	code, out, errOut := runMain(t, procOpts{}, "enqueue", "--database", db, "--judge", l.JudgeTLSURL(), "--judge-ca", withKey, list)
	if code != ExitUsage || !strings.Contains(errOut, "PEM block 2 is a EC PRIVATE KEY") {
		t.Fatalf("enqueue --judge-ca with a key: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runMain(t, procOpts{}, "enqueue", "--database", db, "--judge", l.JudgeTLSURL(), "--judge-ca", ca, "-t", "10s", list)
	if code != ExitOK {
		t.Fatalf("enqueue: exit %d\n%s%s", code, out, errOut)
	}
	st, err := queue.Open(context.Background(), queue.Config{Database: db, Access: queue.ReadOnly})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := st.DB().Query(context.Background(), `SELECT json(args) FROM river_job`) // SQLite keeps JSONB
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var raw []byte
		var args queue.CheckArgs
		if err := rows.Scan(&raw); err != nil || json.Unmarshal(raw, &args) != nil {
			t.Fatalf("job args %q: %v", raw, err)
		}
		if pemText := args.Options.JudgeCAPEM; !bytes.Equal([]byte(pemText), l.CAPEM()) {
			t.Errorf("the job carries %q, want the lab's CA certificate", pemText)
		}
	}
	rows.Close()
	st.Close()

	w := startProxyline(t, t.TempDir(), "worker", "--database", db, "--grace", "2s")
	code, out, errOut = runMain(t, procOpts{}, "status", "--database", db, "--wait", "2m")
	if code != ExitOK {
		t.Fatalf("status --wait: exit %d\n%s%s\nworker:\n%s", code, out, errOut, w.log())
	}
	if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.waited:
	case <-time.After(time.Minute):
		t.Fatalf("worker did not stop:\n%s", w.log())
	}
	code, out, errOut = runMain(t, procOpts{}, "export", "--database", db, "--format", "jsonl", "--all")
	if code != ExitOK {
		t.Fatalf("export: exit %d\n%s", code, errOut)
	}
	outcomes, err := lab.ReadOutcomes(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	requireTruth(t, lab.Compare(l.Truth(), outcomes, lab.Conditions{Timeout: 10 * time.Second, TLSJudge: true}))

	// scrape --check with the same flags, and scrape --enqueue refusing the key as enqueue does.
	sources := filepath.Join(dir, "sources.toml")
	code, out, errOut = runMain(t, procOpts{}, "scrape", "--no-cache", "--config", sources, "--check", "--judge", l.JudgeTLSURL(),
		"--judge-ca", ca, "-t", "10s", "--format", "jsonl", "--all")
	if code != ExitOK {
		t.Fatalf("scrape --check: exit %d\n%s", code, errOut)
	}
	if outcomes, err = lab.ReadOutcomes(strings.NewReader(out)); err != nil {
		t.Fatal(err)
	}
	requireTruth(t, lab.Compare(l.Truth(), outcomes, lab.Conditions{Timeout: 10 * time.Second, TLSJudge: true}))
	code, out, errOut = runMain(t, procOpts{}, "scrape", "--no-cache", "--config", sources, "--enqueue", "--database", db,
		"--judge", l.JudgeTLSURL(), "--judge-ca", withKey)
	if code != ExitUsage || !strings.Contains(errOut, "PEM block 2 is a EC PRIVATE KEY") {
		t.Fatalf("scrape --enqueue --judge-ca with a key: exit %d\n%s%s", code, out, errOut)
	}
}
