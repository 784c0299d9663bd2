package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/proxyline/proxyline/internal/judge"
)

// tlsJudge is the benchmark's https judge: proxyline's judge handler behind a TLS listener whose
// certificate (signed by a CA of its own, written to ca.pem) names both the judge's IP and, when
// given, a host name such as ipinfo.io. It counts the handshakes it serves, full or resumed and
// by key exchange, as the server sees them: whether a client's sessions actually resume is
// measured here, on the far side, whatever the client claims.
type tlsJudge struct {
	srv *http.Server
	url string
	ln  net.Listener

	mu    sync.Mutex
	stats handshakeStats // guarded by mu
}

// handshakeStats counts TLS handshakes at the judge.
type handshakeStats struct {
	full, resumed int
	kx            map[string]int // by key exchange (tls.CurveID's name)
}

// String is the stats as the serve-lab child reports them: "full=N resumed=M kx=A:n,B:m".
func (s handshakeStats) String() string {
	kx := make([]string, 0, len(s.kx))
	for k, n := range s.kx {
		kx = append(kx, fmt.Sprintf("%s:%d", k, n))
	}
	sort.Strings(kx)
	return fmt.Sprintf("full=%d resumed=%d kx=%s", s.full, s.resumed, strings.Join(kx, ","))
}

// parseStats reads what String wrote.
func parseStats(s string) (handshakeStats, error) {
	st := handshakeStats{kx: map[string]int{}}
	for _, f := range strings.Fields(s) {
		key, val, _ := strings.Cut(f, "=")
		var err error
		switch key {
		case "full":
			st.full, err = strconv.Atoi(val)
		case "resumed":
			st.resumed, err = strconv.Atoi(val)
		case "kx":
			for _, e := range strings.Split(val, ",") {
				name, n, ok := strings.Cut(e, ":")
				if !ok {
					continue
				}
				if st.kx[name], err = strconv.Atoi(n); err != nil {
					break
				}
			}
		}
		if err != nil {
			return st, fmt.Errorf("judge stats %q: %w", s, err)
		}
	}
	return st, nil
}

// startTLSJudge serves the judge on addr (e.g. 127.0.0.2:443, or port 0 for any) and writes its
// CA to caPath. name, if not empty, is the host name the judge answers as, and its URL uses it.
func startTLSJudge(addr netip.AddrPort, name, caPath string, log *slog.Logger) (*tlsJudge, error) {
	cert, caPEM, err := judgeCertificate(addr.Addr(), name)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(caPath, caPEM, 0o644); err != nil {
		return nil, fmt.Errorf("write judge CA: %w", err)
	}
	j := &tlsJudge{stats: handshakeStats{kx: map[string]int{}}}
	// The server side is Go's default (TLS 1.2 and 1.3, default key exchanges including the
	// post-quantum hybrids, session tickets on), like a judge on the internet: what is negotiated
	// is the client's choice.
	cfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{"http/1.1"},
		VerifyConnection: func(cs tls.ConnectionState) error {
			j.count(cs)
			return nil
		},
	}
	ln, err := net.Listen("tcp4", addr.String())
	if err != nil {
		return nil, fmt.Errorf("judge: %w", err)
	}
	j.ln = ln
	host := name
	if host == "" {
		host = addr.Addr().String()
	}
	port := ln.Addr().(*net.TCPAddr).Port
	j.url = fmt.Sprintf("https://%s/json", net.JoinHostPort(host, fmt.Sprint(port)))
	if port == 443 {
		j.url = fmt.Sprintf("https://%s/json", host)
	}
	j.srv = &http.Server{
		Handler:           judge.Handler(log),
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		TLSNextProto:      map[string]func(*http.Server, *tls.Conn, http.Handler){}, // no HTTP/2
	}
	go func() {
		if err := j.srv.Serve(tls.NewListener(ln, cfg)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("bench judge stopped", "err", err)
		}
	}()
	return j, nil
}

func (j *tlsJudge) count(cs tls.ConnectionState) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if cs.DidResume {
		j.stats.resumed++
	} else {
		j.stats.full++
	}
	kx := cs.CurveID.String()
	if cs.Version == tls.VersionTLS12 {
		kx = "TLS1.2"
		if cs.DidResume {
			kx += "-resumed"
		} else {
			kx += "-" + cs.CurveID.String()
		}
	}
	j.stats.kx[kx]++
}

// takeStats returns the counts since the last call and resets them.
func (j *tlsJudge) takeStats() handshakeStats {
	j.mu.Lock()
	defer j.mu.Unlock()
	s := j.stats
	j.stats = handshakeStats{kx: map[string]int{}}
	return s
}

// Close stops the judge.
func (j *tlsJudge) Close() error { return j.srv.Close() }

// judgeCertificate makes a CA and a leaf certificate for ip and name, both ECDSA P-256 like the
// lab's, and returns the leaf (with the CA in its chain) and the CA in PEM.
func judgeCertificate(ip netip.Addr, name string) (tls.Certificate, []byte, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("judge CA key: %w", err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "proxyline bench judge CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true, MaxPathLenZero: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("judge CA: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("judge CA: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("judge key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: ip.String()},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{ip.AsSlice()},
	}
	if name != "" {
		tmpl.Subject.CommonName = name
		tmpl.DNSNames = []string{name}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("judge certificate: %w", err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der, caDER}, PrivateKey: key}
	return cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), nil
}
