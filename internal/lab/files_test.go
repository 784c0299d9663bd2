package lab

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDirFiles(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "lab")
	l := startLab(t, Config{HTTP: 2, Bare: 2, Slow: 1, Refused: 1, Dir: dir})

	cands, err := os.ReadFile(filepath.Join(dir, "candidates.txt"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(cands)), "\n")
	if len(lines) != len(l.Candidates()) {
		t.Fatalf("candidates.txt has %d lines, lab %d candidates", len(lines), len(l.Candidates()))
	}
	for i, p := range l.Candidates() {
		if lines[i] != p.String() {
			t.Fatalf("line %d: %q, want %q", i+1, lines[i], p.String())
		}
	}

	f, err := os.Open(filepath.Join(dir, "truth.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	truth := l.Truth()
	n := 0
	for ; sc.Scan(); n++ {
		var rec TruthRecord
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&rec); err != nil {
			t.Fatalf("truth.jsonl line %d: %v", n+1, err)
		}
		if rec != truth[n].Record() || rec.Proxy != lines[n] {
			t.Fatalf("truth.jsonl line %d: %+v, want %+v", n+1, rec, truth[n].Record())
		}
		if rec.Kind == KindSlow && rec.DelayMS != DefaultSlowDelay.Milliseconds() {
			t.Fatalf("slow proxy delay %d ms", rec.DelayMS)
		}
		if rec.Kind == KindBare && strings.Contains(rec.Proxy, "://") {
			t.Fatalf("bare proxy written with a scheme: %s", rec.Proxy)
		}
	}
	if n != len(truth) {
		t.Fatalf("truth.jsonl has %d lines, want %d", n, len(truth))
	}

	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(caPEM)
	if block == nil {
		t.Fatal("ca.pem holds no PEM block")
	}
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil || !ca.IsCA || string(caPEM) != string(l.CAPEM()) {
		t.Fatalf("ca.pem: %v (IsCA %v)", err, ca != nil && ca.IsCA)
	}

	j, err := os.ReadFile(filepath.Join(dir, "judge.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if want := l.JudgeURL() + "\n" + l.JudgeTLSURL() + "\n"; string(j) != want {
		t.Fatalf("judge.txt %q, want %q", j, want)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 4 {
		t.Fatalf("dir holds %d entries, want 4 (no temporary files left)", len(ents))
	}
	_ = context.Background
}
