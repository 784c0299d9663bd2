package rotate

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// FuzzSOCKSServer feeds arbitrary client bytes to the SOCKS5 server's parsers: no panic, every
// failure a short read or a malformed-message error (or a refusal code), every accepted request
// a host:port.
func FuzzSOCKSServer(f *testing.F) {
	f.Add([]byte{5, 1, 0}, []byte{1, 1, 'u', 1, 'p'}, []byte{5, 1, 0, 1, 127, 0, 0, 2, 0, 80})
	f.Add([]byte{5, 2, 0, 2}, []byte{1, 0, 0}, []byte{5, 1, 0, 3, 9, 'l', 'o', 'c', 'a', 'l', 'h', 'o', 's', 't', 1, 187})
	f.Add([]byte{5, 0}, []byte{2}, []byte{5, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1})
	f.Add([]byte{4, 1}, []byte{}, []byte{5, 1, 0, 9})
	f.Fuzz(func(t *testing.T, greeting, auth, request []byte) {
		ok := func(err error) {
			if err != nil && !errors.Is(err, errSOCKS) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("unexpected error %v", err)
			}
		}
		m, err := readSOCKSGreeting(bytes.NewReader(greeting))
		ok(err)
		if err == nil && (len(m) == 0 || len(m) != int(greeting[1])) {
			t.Fatalf("greeting %x gave methods %x", greeting, m)
		}
		u, p, err := readSOCKSUserPass(bytes.NewReader(auth))
		ok(err)
		if err == nil && len(u)+len(p)+3 > len(auth) {
			t.Fatalf("auth %x gave %q %q", auth, u, p)
		}
		target, rep, err := readSOCKSRequest(bytes.NewReader(request))
		if err != nil && rep == 0 {
			ok(err)
		}
		if err == nil {
			if _, _, serr := net.SplitHostPort(target); serr != nil || rep != 0 {
				t.Fatalf("request %x gave target %q rep %d", request, target, rep)
			}
		}
	})
}

// FuzzInboundCredentials checks the user name and Proxy-Authorization parsers: a session name is
// always a suffix of the user name, and the parse of an encoded header gives back what was
// encoded.
func FuzzInboundCredentials(f *testing.F) {
	f.Add("alice-session-abc", "pw")
	f.Add("session-x", "")
	f.Add("a-session-b-session-c", "p:w")
	f.Fuzz(func(t *testing.T, user, pass string) {
		base, session := splitSession(user)
		if session != "" && !strings.HasSuffix(user, session) || !strings.HasPrefix(user, base) {
			t.Fatalf("split %q into %q %q", user, base, session)
		}
		h := http.Header{}
		req := &http.Request{Header: h}
		req.SetBasicAuth(user, pass)
		h.Set("Proxy-Authorization", h.Get("Authorization"))
		u, p, ok := proxyBasicAuth(h)
		if !strings.Contains(user, ":") && (!ok || u != user || p != pass) {
			t.Fatalf("basic %q %q parsed as %q %q %v", user, pass, u, p, ok)
		}
		h.Set("Proxy-Authorization", user)
		_, _, _ = proxyBasicAuth(h)
	})
}
