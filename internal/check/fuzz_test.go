package check

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// FuzzSOCKS5Reply feeds arbitrary bytes to the SOCKS5 reply parsers: they must never panic, a
// success must consume exactly the reply (header, address and port), and every failure must be
// either an I/O error (short input) or a classed one.
func FuzzSOCKS5Reply(f *testing.F) {
	f.Add([]byte{5, 0, 0, 1, 127, 0, 0, 1, 0, 80})
	f.Add([]byte{5, 1, 0, 1, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{5, 0, 0, 3, 4, 'j', 'u', 'd', 'g', 0, 80, 'x'})
	f.Add([]byte{5, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 187})
	f.Add([]byte{4, 0x5A, 0, 80, 127, 0, 0, 1})
	f.Add([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
	f.Add([]byte{5, 0xFF})
	f.Add([]byte{1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		err := readSOCKS5Reply(r)
		if err == nil {
			consumed := len(b) - r.Len()
			want := 4 + 2
			switch b[3] {
			case socks5ATYPIPv4:
				want += 4
			case socks5ATYPIPv6:
				want += 16
			case socks5ATYPDomain:
				want += 1 + int(b[4])
			}
			if consumed != want || b[0] != 5 || b[1] != 0 {
				t.Fatalf("accepted %x consuming %d bytes, want %d", b, consumed, want)
			}
		}
		checkClassed(t, err)
		_, err = readSOCKS5Method(bytes.NewReader(b))
		checkClassed(t, err)
		checkClassed(t, readSOCKS5AuthReply(bytes.NewReader(b)))
		err = readSOCKS4Reply(bytes.NewReader(b))
		if err == nil && (len(b) < 8 || b[1] != socks4Granted) {
			t.Fatalf("SOCKS4 accepted %x", b)
		}
		checkClassed(t, err)
	})
}

// checkClassed fails unless err is nil, a short read, or a classed error.
func checkClassed(t *testing.T, err error) {
	t.Helper()
	var ce *classError
	if err != nil && !errors.As(err, &ce) && !isClosed(err) {
		t.Fatalf("unclassed error %v", err)
	}
}

// FuzzJudgeVerify feeds arbitrary judge pages to the verifier: it must never panic, never accept
// a page that does not echo the token and name the judge, and classify every rejection Mismatch.
func FuzzJudgeVerify(f *testing.F) {
	f.Add([]byte(`{"judge":"proxyline","token":"TOK","remote_ip":"127.0.0.9","headers":{"Via":["1.1 x"]}}`), "TOK", false)
	f.Add([]byte(`{"judge":"proxyline","token":"TOK","remote_ip":"127.0.0.1","headers":{}}`), "TOK", false)
	f.Add([]byte(`{"judge":"proxyline","token":"TOK","remote_ip":"::1","headers":{"Forwarded":["for=\"[::1]:80\""]}}`), "TOK", false)
	f.Add([]byte(`{"judge":"proxyline","token":"forged"}`), "TOK", false)
	f.Add([]byte(`<html>REMOTE_ADDR = 127.0.0.9 HTTP_VIA = squid</html>`), "", true)
	f.Add([]byte(`not json`), "TOK", false)
	f.Fuzz(func(t *testing.T, body []byte, token string, keyword bool) {
		o := Options{Judge: "http://127.0.0.2/", RealIP: "127.0.0.1"}
		if keyword {
			o.JudgeKeyword = "html"
		}
		j, err := parseJudge(o.withDefaults())
		if err != nil {
			t.Fatal(err)
		}
		real := netip.MustParseAddr("127.0.0.1")
		v, err := j.verify(body, token, real)
		if err != nil {
			if classOf(err) != Mismatch {
				t.Fatalf("rejection classed %s: %v", classOf(err), err)
			}
			return
		}
		switch v.anonymity {
		case Transparent, Anonymous, Elite:
		default:
			t.Fatalf("accepted page with anonymity %q", v.anonymity)
		}
		if keyword {
			if !bytes.Contains(body, []byte("html")) {
				t.Fatalf("keyword mode accepted a page without the keyword: %q", body)
			}
			return
		}
		var r judgeReply
		if json.Unmarshal(body, &r) != nil || r.Token != token || r.Judge != judgeName {
			t.Fatalf("accepted page %q for token %q", body, token)
		}
		if r.RemoteIP == "127.0.0.1" && v.anonymity != Transparent {
			t.Fatalf("our address as remote_ip judged %s", v.anonymity)
		}
	})
}

// FuzzContainsIP checks the address matcher against a slow reference: the text split on every
// byte that cannot be part of an address.
func FuzzContainsIP(f *testing.F) {
	f.Add("10.0.0.1, 127.0.0.1", "127.0.0.1")
	f.Add("127.0.0.10", "127.0.0.1")
	f.Add(`for="[2001:db8::1]:4711"`, "2001:db8::1")
	f.Add("127.0.0.1:8080", "127.0.0.1")
	f.Fuzz(func(t *testing.T, s, ipText string) {
		ip, err := netip.ParseAddr(ipText)
		if err != nil {
			return
		}
		ip = ip.Unmap()
		got := containsIP(s, ip)
		if got && !strings.Contains(s, ip.String()) && !strings.Contains(strings.ToLower(s), ip.String()) {
			// The match must come from the text: a v4-mapped or differently written v6 address
			// is the only other way.
			if !ip.Is6() && !strings.Contains(s, "::ffff:") {
				t.Fatalf("containsIP(%q, %s) = true without the address in the text", s, ip)
			}
		}
		if !got && (s == ip.String()) {
			t.Fatalf("containsIP(%q, %s) = false", s, ip)
		}
	})
}
