package check

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
)

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
