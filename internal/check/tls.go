package check

import (
	"crypto/tls"
	"errors"
	"net"
	"sync/atomic"
)

// judgeSessionCacheSize bounds the judge's TLS session cache. A Checker talks to one judge, so
// one entry is all it uses; the LRU is the standard library's ready implementation.
const judgeSessionCacheSize = 4

// maxRejections is how many handshakes in a row the judge must refuse, with no successful one
// between them, before its session is dropped (see judgeSessions).
const maxRejections = 8

// judgeTLS is one way a Checker may speak TLS with its judge: a configuration built once and
// shared by every check (a tls.Config is safe for concurrent use once handshakes use it; one per
// check would cost allocations and, worse, a session cache per check, i.e. no resumption), and
// its session cache.
//
// What a check needs from TLS is to know that the judge's page came from the judge, intact and
// in answer to this check's token: the certificate is always verified (there is no switch to turn
// it off) and every record is authenticated. It does not need secrecy: the page is public and
// the token is used once. Three choices follow, and they decide most of the CPU of a check
// through an https judge (docs/check.md has the numbers):
//
//   - Session resumption across checks. The session cache is shared by every check of the
//     Checker, whatever proxy it goes through, so after the first handshake (Prepare's) checks
//     resume instead of verifying the certificate chain and the judge's signature again. A
//     resumed session is as authentic as the verified handshake it came from: it works only end
//     to end with the judge's key, so a proxy that tampers still fails and a man in the middle
//     still cannot answer. Sharing tickets across proxies links nothing that is not linked
//     already: every proxy sees the checker's own address anyway, and the judge is ours or
//     chosen by the user. A ticket holds no result: each result is read from the check's own
//     connection.
//   - TLS 1.2 when the judge speaks it (resumable12). A TLS 1.3 resumption still runs a key
//     exchange (Go's client supports only psk_dhe_ke), two X25519 operations per check; a TLS
//     1.2 resumption runs none, and costs less than half the CPU of a TLS 1.3 one, for us and
//     for the judge. What TLS 1.2 gives up is secrecy (forward secrecy of resumed sessions, the
//     certificate in clear), which a liveness check does not need; authenticity and integrity
//     are the same, with AEAD cipher suites and ECDHE only. Prepare finds out whether the judge
//     speaks TLS 1.2 and gives session tickets; a judge that does not is checked with modern.
//     (A full TLS 1.2 handshake shows tampering less clearly than TLS 1.3, where everything
//     after the ServerHello is encrypted: a flipped byte is a record failing its MAC, mismatch,
//     in TLS 1.3, but may be a handshake error or a wait for bytes that never come in TLS 1.2.
//     With tickets, a full handshake through a proxy happens only when the judge has rejected
//     its session: see judgeSessions.)
//   - The key exchange. Go's default offers the hybrid post-quantum X25519MLKEM768 (and, from
//     Go 1.26, SecP256r1MLKEM768), which protects today's traffic against decryption by a
//     future quantum computer, and costs an ML-KEM key generation and decapsulation per
//     handshake: about a third of a check's CPU. A liveness check has nothing to keep secret for
//     years, so it offers X25519, then P-256 and P-384 for judges without X25519 (a judge that
//     wants them answers with a HelloRetryRequest). Options.PostQuantum restores Go's default,
//     and TLS 1.3 (the hybrids exist only there), for users who want it anyway.
type judgeTLS struct {
	config   *tls.Config
	sessions *judgeSessions
}

// resumable12 is the preferred way (see judgeTLS): TLS 1.2, ECDHE with AEAD cipher suites only,
// session tickets.
func resumable12(opts Options, serverName string, curves []tls.CurveID) *judgeTLS {
	s := newJudgeSessions()
	return &judgeTLS{sessions: s, config: &tls.Config{
		ServerName:         serverName,
		RootCAs:            opts.RootCAs,
		MinVersion:         tls.VersionTLS12,
		MaxVersion:         tls.VersionTLS12,
		CurvePreferences:   curves,
		ClientSessionCache: s,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
	}}
}

// modern is TLS 1.2 and 1.3 with Go's default cipher suites, and curves (nil: Go's default key
// exchanges): before Prepare, for a judge that refuses resumable12, and with
// Options.PostQuantum. TLS 1.3 sessions resume too.
func modern(opts Options, serverName string, curves []tls.CurveID) *judgeTLS {
	s := newJudgeSessions()
	return &judgeTLS{sessions: s, config: &tls.Config{
		ServerName:         serverName,
		RootCAs:            opts.RootCAs,
		MinVersion:         tls.VersionTLS12,
		CurvePreferences:   curves,
		ClientSessionCache: s,
	}}
}

// judgeSessions is the judge's TLS session cache: the standard library's LRU cache, except that
// a check that fails through a bad proxy does not throw the judge's session away.
//
// crypto/tls drops the cached session whenever a handshake that offered it fails (RFC 5077
// section 3.2), in case the session itself is what the server refused. Through proxies nearly
// every such failure is the proxy's: a timeout, a hang-up, a tunnel that alters bytes. With a
// thousand checks in flight each of those dropped the session the other checks were about to
// offer, and on a loaded machine or a list of poor proxies thousands of checks fell back to full
// handshakes, which made more of them time out. So crypto/tls's drops are ignored, and the
// check that failed decides instead: only a TLS alert from the far end (the judge refusing the
// handshake, e.g. with decrypt_error for a session whose binder it rejects) counts, and only
// maxRejections of them in a row, with no successful handshake between them, drop the session.
// Keeping a session the judge does not resume costs nothing more: the judge answers with a full
// handshake, whose new ticket replaces it. crypto/tls also asks to drop a session it will not
// offer (expired, or its certificate no longer valid); ignoring that is harmless for the same
// reason. A proxy that forges alerts can at worst cost us full handshakes.
type judgeSessions struct {
	lru        atomic.Pointer[sessionLRU]
	rejections atomic.Int32 // alerts from the judge since the last successful handshake
	stored     atomic.Bool  // the judge has given a session at least once
}

// sessionLRU boxes the standard library's cache so that it can be swapped atomically.
type sessionLRU struct{ tls.ClientSessionCache }

func newJudgeSessions() *judgeSessions {
	s := &judgeSessions{}
	s.lru.Store(&sessionLRU{tls.NewLRUClientSessionCache(judgeSessionCacheSize)})
	return s
}

// Get returns the cached session for key.
func (s *judgeSessions) Get(key string) (*tls.ClientSessionState, bool) {
	return s.lru.Load().Get(key)
}

// Put stores cs for key. A nil cs, crypto/tls asking to drop the session after a failed
// handshake, is ignored: rejected decides (see judgeSessions).
func (s *judgeSessions) Put(key string, cs *tls.ClientSessionState) {
	if cs != nil {
		s.lru.Load().Put(key, cs)
		s.stored.Store(true)
	}
}

// succeeded records a successful handshake with the judge.
func (s *judgeSessions) succeeded() { s.rejections.Store(0) }

// rejected records a handshake the far end refused with an alert; the maxRejections-th in a row
// drops every session.
func (s *judgeSessions) rejected() {
	if s.rejections.Add(1) >= maxRejections {
		s.rejections.Store(0)
		s.lru.Store(&sessionLRU{tls.NewLRUClientSessionCache(judgeSessionCacheSize)})
	}
}

// isRemoteAlert reports whether err is a TLS alert the peer sent. crypto/tls reports one as a
// *net.OpError with Op "remote error" (its own alerts have another form); if that ever changed,
// TestJudgeSessionSurvivesBadProxies would fail.
func isRemoteAlert(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "remote error"
}

// curvePreferences is the key exchanges a check offers (see judgeTLS); nil means Go's
// default.
func curvePreferences(opts Options) []tls.CurveID {
	if opts.PostQuantum {
		return nil
	}
	return []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384}
}

// proxyTLSConfig returns the TLS configuration for an https:// proxy at host: verified against
// the same roots as the judge, with the same key exchanges. It is built per check because the
// server name is the proxy's; without a session cache, as every proxy is met once per run.
func (c *Checker) proxyTLSConfig(host string) *tls.Config {
	return &tls.Config{ServerName: host, RootCAs: c.opts.RootCAs, MinVersion: tls.VersionTLS12, CurvePreferences: c.curves}
}
