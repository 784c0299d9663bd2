package check

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"net/textproto"
	"net/url"
	"strings"

	judgepkg "github.com/proxyline/proxyline/internal/judge"
)

// judgeName is the "judge" field of proxyline's judge replies.
const judgeName = judgepkg.Name

// userAgent is sent with every judge request.
const userAgent = "proxyline-check/1"

// judge is the parsed judge URL: everything a check needs to address it, computed once.
type judge struct {
	tls      bool   // https
	host     string // host name or IP, without brackets (TLS server name, SOCKS target)
	port     uint16
	addr     string     // host:port to dial directly
	hostHdr  string     // Host header value
	ip       netip.Addr // host when it is an IP literal (SOCKS4 needs an address)
	origin   string     // origin-form target up to the token: "/path?q=1&t="
	absolute string     // absolute-form target up to the token: "http://host/path?t="
	keyword  []byte     // third-party mode when non-empty
	status   int        // expected status
	realIP   netip.Addr // our address as the judge sees it; invalid = unknown
}

func parseJudge(o Options) (*judge, error) {
	u, err := url.Parse(o.Judge)
	if err != nil {
		return nil, fmt.Errorf("judge %q: %w", o.Judge, err)
	}
	j := &judge{tls: u.Scheme == "https", host: u.Hostname(), hostHdr: u.Host, status: o.JudgeStatus}
	port := u.Port()
	if port == "" {
		port = "80"
		if j.tls {
			port = "443"
		}
	}
	var p uint64
	if _, err := fmt.Sscanf(port, "%d", &p); err != nil || p == 0 || p > 65535 {
		return nil, fmt.Errorf("judge %q: bad port %q", o.Judge, port)
	}
	j.port = uint16(p)
	j.addr = net.JoinHostPort(j.host, port)
	if ip, err := netip.ParseAddr(j.host); err == nil {
		j.ip = ip.Unmap()
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	q := u.RawQuery
	if q != "" {
		q += "&"
	}
	j.origin = path + "?" + q + judgepkg.TokenParam + "="
	j.absolute = u.Scheme + "://" + u.Host + j.origin
	j.keyword = []byte(o.JudgeKeyword)
	if o.RealIP != "" {
		j.realIP, _ = netip.ParseAddr(o.RealIP)
		j.realIP = j.realIP.Unmap()
	}
	return j, nil
}

// appendRequest appends the judge request to b: absolute-form (for an HTTP proxy forwarding a
// plain http judge request) or origin-form (through a tunnel). auth is a ready
// Proxy-Authorization value or "". No proxy-revealing header is sent: the judge must see only
// what the proxy adds.
func (j *judge) appendRequest(b []byte, absolute bool, token, auth string) []byte {
	b = append(b, "GET "...)
	if absolute {
		b = append(b, j.absolute...)
	} else {
		b = append(b, j.origin...)
	}
	b = append(b, token...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, j.hostHdr...)
	b = append(b, "\r\nUser-Agent: "+userAgent+"\r\nAccept: */*\r\nConnection: close\r\n"...)
	if auth != "" {
		b = append(b, "Proxy-Authorization: "...)
		b = append(b, auth...)
		b = append(b, "\r\n"...)
	}
	return append(b, "\r\n"...)
}

// verdict is what a judge page told us.
type verdict struct {
	exitIP    string
	anonymity Anonymity
}

// judgeReply is the part of proxyline's judge page (judgepkg.Response) a check uses; decoding
// only these fields is cheaper than decoding the whole Response.
type judgeReply struct {
	Judge    string              `json:"judge"`
	Token    string              `json:"token"`
	RemoteIP string              `json:"remote_ip"`
	Headers  map[string][]string `json:"headers"`
}

// verify checks a judge page (status already checked) and judges anonymity. An error is always
// Mismatch: the page is not the one we asked for.
func (j *judge) verify(body []byte, token string, realIP netip.Addr) (verdict, error) {
	if len(j.keyword) > 0 {
		return j.verifyKeyword(body, realIP)
	}
	var r judgeReply
	if err := json.Unmarshal(body, &r); err != nil {
		return verdict{}, fail(Mismatch, "judge page is not proxyline judge JSON: %w", err)
	}
	if r.Judge != judgeName {
		return verdict{}, fail(Mismatch, "judge page names judge %q, want %q", trunc(r.Judge), judgeName)
	}
	if r.Token != token {
		return verdict{}, fail(Mismatch, "judge page echoes token %q, want %q", trunc(r.Token), token)
	}
	v := verdict{exitIP: r.RemoteIP, anonymity: Elite}
	remote, _ := netip.ParseAddr(r.RemoteIP)
	if realIP.IsValid() && remote.Unmap() == realIP {
		v.anonymity = Transparent
		return v, nil
	}
	for name, values := range r.Headers {
		if realIP.IsValid() {
			for _, val := range values {
				if containsIP(val, realIP) {
					v.anonymity = Transparent
					return v, nil
				}
			}
		}
		if isProxyHeader(name) {
			v.anonymity = Anonymous
		}
	}
	return v, nil
}

// verifyKeyword judges a third-party page: it must contain the keyword; our address anywhere in
// it means transparent, a proxy header name (as a header or as a CGI variable) anonymous.
func (j *judge) verifyKeyword(body []byte, realIP netip.Addr) (verdict, error) {
	if !bytes.Contains(body, j.keyword) {
		return verdict{}, fail(Mismatch, "judge page lacks keyword %q", j.keyword)
	}
	v := verdict{anonymity: Elite}
	if realIP.IsValid() && containsIP(string(body), realIP) {
		v.anonymity = Transparent
		return v, nil
	}
	upper := bytes.ToUpper(body)
	for _, h := range proxyHeaderNames() {
		name := strings.ToUpper(h)
		cgi := "HTTP_" + strings.ReplaceAll(name, "-", "_")
		if bytes.Contains(upper, []byte(cgi)) || containsWord(upper, []byte(name)) {
			v.anonymity = Anonymous
			break
		}
	}
	return v, nil
}

// proxyHeaderNames lists request headers proxies add to announce themselves or the client,
// canonical. Their presence at the judge (with our address absent) makes a proxy anonymous rather
// than elite. A function, not a package variable, so nothing can change it.
func proxyHeaderNames() []string {
	return []string{
		"Via", "X-Forwarded-For", "Forwarded", "X-Forwarded", "Forwarded-For", "X-Forwarded-Host",
		"X-Forwarded-Proto", "X-Forwarded-Server", "X-Real-Ip", "Proxy-Connection", "Client-Ip",
		"X-Client-Ip", "X-Proxy-Id", "X-Proxyuser-Ip", "X-Cluster-Client-Ip", "True-Client-Ip",
		"X-Originating-Ip", "X-Remote-Ip", "X-Remote-Addr", "X-Bluecoat-Via", "Proxy-Agent",
		"Cf-Connecting-Ip", "Fastly-Client-Ip", "X-Host",
	}
}

func isProxyHeader(name string) bool {
	name = textproto.CanonicalMIMEHeaderKey(name)
	for _, h := range proxyHeaderNames() {
		if name == h {
			return true
		}
	}
	return false
}

// containsIP reports whether ip appears in s as a whole address: alone, in a list, as
// host:port, [v6]:port, or for=... (Forwarded). "127.0.0.10" does not contain 127.0.0.1.
func containsIP(s string, ip netip.Addr) bool {
	for f := range strings.FieldsFuncSeq(s, isIPSeparator) {
		if a, err := netip.ParseAddr(f); err == nil && a.Unmap() == ip {
			return true
		}
		if ap, err := netip.ParseAddrPort(f); err == nil && ap.Addr().Unmap() == ip {
			return true
		}
	}
	return false
}

// isIPSeparator splits text into candidate address tokens. ':' is not a separator (IPv6); a
// v4 host:port token is handled by ParseAddrPort.
func isIPSeparator(r rune) bool {
	switch r {
	case ',', ';', '=', '"', '\'', '[', ']', ' ', '\t', '\r', '\n', '<', '>', '(', ')', '{', '}', '/', '\\':
		return true
	}
	return false
}

// containsWord reports whether word occurs in s not preceded or followed by a letter, digit, '-'
// or '_' (so "VIA" matches "VIA:" but not "TRIVIAL").
func containsWord(s, word []byte) bool {
	for i := 0; ; {
		k := bytes.Index(s[i:], word)
		if k < 0 {
			return false
		}
		start, end := i+k, i+k+len(word)
		if (start == 0 || !isWordByte(s[start-1])) && (end == len(s) || !isWordByte(s[end])) {
			return true
		}
		i = start + 1
	}
}

func isWordByte(c byte) bool {
	return c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

// trunc shortens untrusted text quoted in an error.
func trunc(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
