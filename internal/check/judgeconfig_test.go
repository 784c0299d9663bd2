package check

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"io"
	"io/fs"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/lab"
)

// testCA returns a self-signed CA certificate and its key, both as PEM.
func testCA(t testing.TB, name string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func TestJudgeConfigFlags(t *testing.T) {
	t.Parallel()
	var j JudgeConfig
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	j.Register(fs)
	if err := fs.Parse([]string{"--judge", "https://127.0.0.2/", "--judge-ca", "ca.pem", "--judge-keyword", "REMOTE_ADDR", "--judge-pq"}); err != nil {
		t.Fatal(err)
	}
	want := JudgeConfig{URL: "https://127.0.0.2/", CAFile: "ca.pem", Status: 200, Keyword: "REMOTE_ADDR", PostQuantum: true}
	if j != want {
		t.Errorf("parsed %+v, want %+v", j, want)
	}
	for _, name := range []string{"judge", "judge-ca", "judge-status", "judge-keyword", "judge-pq"} {
		if f := fs.Lookup(name); f == nil || f.Usage == "" {
			t.Errorf("flag --%s not defined, or without help", name)
		}
	}
}

func TestJudgeConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		j    JudgeConfig
		want string // "" = valid
	}{
		{"empty is the command's business", JudgeConfig{}, ""},
		{"ok", JudgeConfig{URL: "https://judge.example:8443/x", Status: 204, CAFile: "ca.pem"}, ""},
		{"bad scheme", JudgeConfig{URL: "ftp://127.0.0.1/"}, "--judge: judge \"ftp://127.0.0.1/\": scheme must be http or https"},
		{"credentials", JudgeConfig{URL: "http://u:p@127.0.0.1/"}, "credentials"},
		{"status", JudgeConfig{URL: "http://127.0.0.1/", Status: 42}, "--judge-status 42: not an HTTP status"},
		{"both CA forms", JudgeConfig{CAFile: "a", CAPEM: "b"}, "both"},
	}
	for _, tt := range tests {
		err := tt.j.Validate()
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: Validate() = %v, want %q", tt.name, err, tt.want)
		}
	}
}

// TestJudgeConfigLoadCA: the loader takes certificates and only certificates (a key must never
// travel in a job), names the file and what is wrong, and re-encodes what it keeps.
func TestJudgeConfigLoadCA(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca1, key1 := testCA(t, "one")
	ca2, _ := testCA(t, "two")
	write := func(name string, content []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, content, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bundle := append(append([]byte("# Issuer: one\n"), ca1...), append([]byte("\n# Issuer: two\n"), ca2...)...)
	broken := append(append([]byte{}, ca1...), "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n"...)
	tests := []struct {
		name    string
		file    string
		want    string // error substring; "" = loads
		certs   int
		pathErr bool
	}{
		{"one CA", write("one.pem", ca1), "", 1, false},
		{"a bundle with comments", write("bundle.pem", bundle), "", 2, false},
		{"a key", write("key.pem", key1), "PEM block 1 is a EC PRIVATE KEY, not a CERTIFICATE", 0, false},
		{"a certificate with its key", write("both.pem", append(append([]byte{}, ca1...), key1...)), "PEM block 2 is a EC PRIVATE KEY", 0, false},
		{"not PEM", write("text.pem", []byte("hello\n")), "no PEM certificate", 0, false},
		{"empty", write("empty.pem", nil), "no PEM certificate", 0, false},
		{"a block that does not parse", write("broken.pem", broken), "2 PEM blocks, of which 1 do not parse", 0, false},
		{"not a certificate inside", write("junk.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("junk")})), "certificate 1", 0, false},
		{"too big", write("big.pem", append(bytes.Repeat([]byte("#\n"), MaxCAFile/2), ca1...)), "over", 0, false},
		{"missing", filepath.Join(dir, "missing.pem"), "no such file", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			j := JudgeConfig{URL: "https://127.0.0.2/", CAFile: tt.file}
			err := j.LoadCA()
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("LoadCA() = %v, want an error with %q", err, tt.want)
				}
				var pe *fs.PathError
				if errors.As(err, &pe) != tt.pathErr {
					t.Errorf("LoadCA() = %v: a *fs.PathError is %v, want %v", err, !tt.pathErr, tt.pathErr)
				}
				if j.CAPEM != "" || j.CAFile != tt.file {
					t.Errorf("a failed load changed the configuration: %+v", j)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if j.CAFile != "" || strings.Count(j.CAPEM, "-----BEGIN CERTIFICATE-----") != tt.certs || strings.Contains(j.CAPEM, "#") {
				t.Errorf("loaded %+v: want %d certificates, re-encoded, and no file", j, tt.certs)
			}
			if err := j.LoadCA(); err != nil { // loaded PEM is checked again, and stays
				t.Errorf("second LoadCA: %v", err)
			}
		})
	}
}

// TestJudgeConfigCAReplacesSystemRoots: a configured CA is the only trust. No CA means the
// system roots (nil); a CA gives a pool of exactly its certificates. Then, in a child process
// whose system roots are the lab's CA (SSL_CERT_FILE), the lab's https judge is trusted without
// a CA, and not trusted with another CA configured: adding that CA to the system roots would
// still trust the judge (the known-bad this test exists to catch).
func TestJudgeConfigCAReplacesSystemRoots(t *testing.T) {
	t.Parallel()
	l := startLab(t, lab.Config{HTTP: 1})
	if roots, err := (JudgeConfig{URL: l.JudgeTLSURL()}).RootCAs(); err != nil || roots != nil {
		t.Fatalf("no CA: RootCAs() = %v, %v; want nil (the system roots)", roots, err)
	}
	roots, err := (JudgeConfig{URL: l.JudgeTLSURL(), CAPEM: string(l.CAPEM())}).RootCAs()
	if err != nil {
		t.Fatal(err)
	}
	if !roots.Equal(l.CAPool()) {
		t.Error("the pool is not exactly the configured CA")
	}

	dir := t.TempDir()
	other, _ := testCA(t, "other")
	labCA, otherCA := filepath.Join(dir, "lab.pem"), filepath.Join(dir, "other.pem")
	if err := os.WriteFile(labCA, l.CAPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(otherCA, other, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestJudgeConfigSystemRootsHelper$", "-test.v")
	cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+labCA, "SSL_CERT_DIR="+dir,
		systemRootsHelperEnv+"="+l.JudgeTLSURL()+" "+otherCA)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestJudgeConfigSystemRootsHelper") {
		t.Fatalf("helper: %v\n%s", err, out)
	}
}

const systemRootsHelperEnv = "PROXYLINE_TEST_SYSTEM_ROOTS"

// TestJudgeConfigSystemRootsHelper is TestJudgeConfigCAReplacesSystemRoots's child process.
func TestJudgeConfigSystemRootsHelper(t *testing.T) {
	judge, otherCA, ok := strings.Cut(os.Getenv(systemRootsHelperEnv), " ")
	if !ok {
		t.Skip("run by TestJudgeConfigCAReplacesSystemRoots")
	}
	prepare := func(j JudgeConfig) error {
		if err := j.LoadCA(); err != nil {
			t.Fatal(err)
		}
		o, err := j.Options(10*time.Second, nil)
		if err != nil {
			t.Fatal(err)
		}
		c, err := New(o)
		if err != nil {
			t.Fatal(err)
		}
		return c.Prepare(context.Background())
	}
	if err := prepare(JudgeConfig{URL: judge}); err != nil {
		t.Fatalf("without a CA the system roots (here: the lab's CA) must trust the judge: %v", err)
	}
	err := prepare(JudgeConfig{URL: judge, CAFile: otherCA})
	if err == nil || classOf(err) != TLSError {
		t.Fatalf("with another CA the judge must not be trusted (the CA replaces the system roots): %v", err)
	}
}

func TestJudgeConfigOptions(t *testing.T) {
	t.Parallel()
	ca, _ := testCA(t, "one")
	j := JudgeConfig{URL: "https://127.0.0.2/", CAPEM: string(ca), Status: 204, Keyword: "x", PostQuantum: true}
	o, err := j.Options(3*time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.Judge != j.URL || o.JudgeStatus != 204 || o.JudgeKeyword != "x" || !o.PostQuantum || o.Timeout != 3*time.Second || o.RootCAs == nil {
		t.Errorf("Options = %+v", o)
	}
	if _, err := (JudgeConfig{URL: j.URL, CAFile: "ca.pem"}).Options(0, nil); err == nil {
		t.Error("Options with a CA file not loaded: no error")
	}
}

// FuzzParseCAs: whatever the input, the parser does not panic; what it accepts holds only
// certificates, as many as it says, and parses again to the same.
func FuzzParseCAs(f *testing.F) {
	ca, key := testCA(f, "seed")
	f.Add(ca)
	f.Add(append(append([]byte("# comment\n"), ca...), ca...))
	f.Add(key)
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"))
	f.Add([]byte("no pem at all"))
	f.Fuzz(func(t *testing.T, b []byte) {
		pool, canonical, err := parseCAs(b, "fuzz")
		if err != nil {
			return
		}
		if pool == nil || len(canonical) == 0 {
			t.Fatalf("accepted %q without certificates", b)
		}
		if bytes.Count(canonical, []byte("-----BEGIN ")) != bytes.Count(canonical, []byte("-----BEGIN CERTIFICATE-----")) {
			t.Fatalf("canonical form holds other blocks: %q", canonical)
		}
		pool2, canonical2, err := parseCAs(canonical, "again")
		if err != nil || !bytes.Equal(canonical, canonical2) || !pool.Equal(pool2) {
			t.Fatalf("canonical form does not parse back to itself: %v", err)
		}
	})
}
