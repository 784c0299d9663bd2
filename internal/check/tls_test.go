package check

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	judgepkg "github.com/proxyline/proxyline/internal/judge"
	"github.com/proxyline/proxyline/internal/lab"
	"github.com/proxyline/proxyline/proxy"
)

// handshake is one TLS handshake as a judge saw it.
type handshake struct {
	from    string // the client's (for a check, the proxy's) IP
	resumed bool
	curve   tls.CurveID
	version uint16
}

// countingJudge is proxyline's judge over TLS (Go's default server settings, like a judge on the
// internet, unless told otherwise) that records every handshake: whether a check
// resumed is decided by the server.
type countingJudge struct {
	url  string
	pool *x509.CertPool

	mu   sync.Mutex
	seen []handshake // guarded by mu
}

func startCountingJudge(t *testing.T, cfg *tls.Config) *countingJudge {
	t.Helper()
	j := &countingJudge{}
	srv := httptest.NewUnstartedServer(judgepkg.Handler(nil))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // failed handshakes are what some tests are about
	srv.TLS = cfg.Clone()
	srv.StartTLS()
	t.Cleanup(srv.Close)
	// A config per connection, to know whom each handshake came from; session tickets are
	// still the server's (crypto/tls copies the keys of the Config it was started with).
	base := srv.TLS.Clone()
	srv.TLS.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		from, _, _ := net.SplitHostPort(hello.Conn.RemoteAddr().String())
		cfg := base.Clone()
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			j.mu.Lock()
			defer j.mu.Unlock()
			j.seen = append(j.seen, handshake{from, cs.DidResume, cs.CurveID, cs.Version})
			return nil
		}
		return cfg, nil
	}
	j.url = srv.URL + "/judge"
	j.pool = x509.NewCertPool()
	j.pool.AddCert(srv.Certificate())
	return j
}

// take returns the handshakes seen since the last call that came from the address from, or from
// anywhere if from is "".
func (j *countingJudge) take(from string) []handshake {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []handshake
	for _, h := range j.seen {
		if from == "" || h.from == from {
			out = append(out, h)
		}
	}
	j.seen = nil
	return out
}

// proxiesOf returns the lab's candidates of one kind.
func proxiesOf(l *lab.Lab, kind string) []proxy.Proxy {
	var ps []proxy.Proxy
	for _, t := range l.Truth() {
		if t.Kind == kind {
			ps = append(ps, t.Proxy)
		}
	}
	return ps
}

// TestJudgeTLSResumesAndKeyExchange: Prepare's handshake with an https judge is the only full
// one; every check after it, through any proxy and many at once, resumes (the judge says so).
// By default TLS 1.2 with X25519 (a TLS 1.2 resumption has no key exchange at all); TLS 1.3
// with X25519 for a judge that refuses TLS 1.2 or gives no ticket; TLS 1.3 with the hybrid
// post-quantum exchange with Options.PostQuantum.
func TestJudgeTLSResumesAndKeyExchange(t *testing.T) {
	t.Parallel()
	l := startLab(t, lab.Config{HTTP: 4, SOCKS5: 4})
	tests := []struct {
		name    string
		pq      bool
		judge   *tls.Config // the judge's settings (Go's default otherwise)
		prepare uint16      // the version of Prepare's (last) handshake
		version uint16      // the version of the checks' handshakes
		resume  bool        // whether the checks resume
		curve   tls.CurveID
	}{
		{"default", false, &tls.Config{}, tls.VersionTLS12, tls.VersionTLS12, true, tls.X25519},
		{"judge refuses TLS 1.2", false, &tls.Config{MinVersion: tls.VersionTLS13}, tls.VersionTLS13, tls.VersionTLS13, true, tls.X25519},
		{"judge gives no ticket", false, &tls.Config{SessionTicketsDisabled: true}, tls.VersionTLS12, tls.VersionTLS13, false, tls.X25519},
		{"post-quantum", true, &tls.Config{}, tls.VersionTLS13, tls.VersionTLS13, true, tls.X25519MLKEM768},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			j := startCountingJudge(t, tt.judge)
			c, err := New(Options{Judge: j.url, RootCAs: j.pool, Timeout: 10 * time.Second, PostQuantum: tt.pq})
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Prepare(context.Background()); err != nil {
				t.Fatal(err)
			}
			hs := j.take("")
			if last := hs[len(hs)-1]; last.resumed || last.curve != tt.curve || last.version != tt.prepare {
				t.Fatalf("Prepare: judge saw %+v, want a last full handshake, version %x, %v", hs, tt.prepare, tt.curve)
			}
			ps := l.Candidates()
			for _, conc := range []int{len(ps), 1} { // all at once, then one after the other
				c.CheckAll(context.Background(), ps, conc, func(r Result) {
					if r.Class != Alive {
						t.Errorf("%s: %s (%s)", r.Proxy, r.Class, r.Err)
					}
				})
			}
			hs = j.take("")
			if len(hs) != 2*len(ps) {
				t.Fatalf("judge saw %d handshakes, want %d", len(hs), 2*len(ps))
			}
			for i, h := range hs {
				// A resumed TLS 1.2 session reports the key exchange of its first handshake.
				if h.resumed != tt.resume || h.curve != tt.curve || h.version != tt.version {
					t.Errorf("handshake %d: %+v, want resumed=%v, version %x, %v", i, h, tt.resume, tt.version, tt.curve)
				}
			}
			if !tt.resume {
				return
			}
			if full, resumed := c.tlsFull.Load(), c.tlsResumed.Load(); full != 1 || resumed != int64(len(hs)) {
				t.Errorf("checker counted %d full and %d resumed handshakes, want 1 and %d", full, resumed, len(hs))
			}
		})
	}
}

// TestJudgeSessionSurvivesBadProxies: handshakes that fail through lying or altering proxies,
// which make crypto/tls ask the cache to drop the session they offered, do not cost later checks
// their resumption, however many there are; only maxRejections alerts from the far end in a
// row, with no success between them, drop the session.
func TestJudgeSessionSurvivesBadProxies(t *testing.T) {
	t.Parallel()
	l := startLab(t, lab.Config{HTTP: 2, Liar: maxRejections + 1, Alter: maxRejections + 1})
	j := startCountingJudge(t, &tls.Config{})
	c, err := New(Options{Judge: j.url, RootCAs: j.pool, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	good := proxiesOf(l, lab.KindHTTP)[0]
	checkGood := func(wantResumed bool) {
		t.Helper()
		if r := c.Check(ctx, good); r.Class != Alive {
			t.Fatalf("%s: %s (%s)", r.Proxy, r.Class, r.Err)
		}
		// Only this check's handshake: one through an altering proxy may be counted late.
		if hs := j.take(good.Host); len(hs) != 1 || hs[0].resumed != wantResumed {
			t.Fatalf("judge saw %+v, want one handshake with resumed=%v", hs, wantResumed)
		}
	}
	checkBad := func(ps []proxy.Proxy, want Class) {
		t.Helper()
		for _, p := range ps {
			if r := c.Check(ctx, p); r.Class != want {
				t.Fatalf("%s: %s (%s), want %s", p, r.Class, r.Err, want)
			}
		}
	}
	// Liars hang up after "200 Connection established"; alterers flip a byte of the judge's.
	checkBad(proxiesOf(l, lab.KindLiar), TLSError)
	checkBad(proxiesOf(l, lab.KindAlter), Mismatch)
	checkGood(true)

	// A proxy that answers the ClientHello with a fatal alert, as a judge refusing the session
	// would.
	alerter := proxyAt(t, proxy.HTTP, fakeProxy(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
		if _, err := br.Peek(5); err != nil { // the ClientHello's record header
			return
		}
		c.Write([]byte{0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28}) // fatal handshake_failure
	}))
	alerts := func(n int) {
		t.Helper()
		for range n {
			checkBad([]proxy.Proxy{alerter}, TLSError)
		}
	}
	alerts(maxRejections - 1)
	checkGood(true) // a success between them: the count starts again
	alerts(maxRejections)
	checkGood(false)
	checkGood(true)
}

// TestJudgeSessionsCache covers judgeSessions alone.
func TestJudgeSessionsCache(t *testing.T) {
	t.Parallel()
	s := newJudgeSessions()
	cs := &tls.ClientSessionState{}
	s.Put("judge", cs)
	s.Put("judge", nil)
	if got, ok := s.Get("judge"); !ok || got != cs {
		t.Fatalf("after crypto/tls's drop: Get = %v, %v; want the session kept", got, ok)
	}
	for range maxRejections - 1 {
		s.rejected()
	}
	s.succeeded()
	for range maxRejections - 1 {
		s.rejected()
	}
	if got, ok := s.Get("judge"); !ok || got != cs {
		t.Fatalf("a success did not restart the count of rejections: Get = %v, %v", got, ok)
	}
	s.rejected()
	if got, ok := s.Get("judge"); ok {
		t.Fatalf("after %d rejections in a row: Get = %v; want none", maxRejections, got)
	}
	s.Put("judge", cs)
	if got, ok := s.Get("judge"); !ok || got != cs {
		t.Fatalf("Put after a drop: Get = %v, %v", got, ok)
	}
}
