package extract

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"strings"

	"github.com/proxyline/proxyline/proxy"
)

// DefaultCIDRCap is Options.CIDRCap's default: the most addresses one source may expand
// CIDR ranges into.
const DefaultCIDRCap = 65536

// maxErrors is how many errors one extraction keeps; later ones are counted only.
const maxErrors = 10

// Options tune extraction. The zero value is the default.
type Options struct {
	// Scheme is given to candidates found without one (a bare host:port). Default: none, so the
	// checker probes the protocol.
	Scheme proxy.Scheme
	// CIDRCap bounds the addresses CIDR ranges ("10.0.0.0/24:8080") expand to, for the whole
	// extraction: a range that would pass it is refused with a *RangeError. Default
	// DefaultCIDRCap. Negative: CIDR ranges are refused.
	CIDRCap int
	// Hostnames accepts host names as well as IP addresses.
	Hostnames bool
	// JSONPath, for JSON, is a dot-separated path to the values that hold proxies
	// ("data.proxies"); arrays on the way are walked element by element. Default: the whole
	// document.
	JSONPath string
}

func (o Options) cidrCap() int {
	if o.CIDRCap == 0 {
		return DefaultCIDRCap
	}
	return max(o.CIDRCap, 0)
}

// RangeError is a CIDR range refused because it would pass the cap.
type RangeError struct {
	Range string // as written, e.g. "10.0.0.0/8:8080"
	Size  *big.Int
	Cap   int // addresses left under the cap when the range was met
}

func (e *RangeError) Error() string {
	return fmt.Sprintf("CIDR range %s holds %s addresses, more than the %d left under the cap: refused", e.Range, e.Size, e.Cap)
}

// errs gathers the errors of one extraction: the first maxErrors, and how many more there were.
type errs struct {
	list []error
	more int
}

func (e *errs) add(err error) {
	if len(e.list) < maxErrors {
		e.list = append(e.list, err)
		return
	}
	e.more++
}

func (e *errs) err() error {
	if e.more > 0 {
		return errors.Join(append(e.list, fmt.Errorf("and %d more errors", e.more))...)
	}
	return errors.Join(e.list...)
}

// Text finds the candidates in any text and calls emit with each, in order of appearance (a
// proxy named twice is emitted twice; deduplication is the caller's). The error lists what was
// refused (CIDR ranges past the cap); every acceptable candidate is emitted regardless.
func Text(b []byte, o Options, emit func(proxy.Proxy)) error {
	s := textScanner{b: b, o: o, cidrLeft: o.cidrCap(), emit: emit}
	s.scan()
	return s.errs.err()
}

// textScanner is one pass of Text over b.
type textScanner struct {
	b        []byte
	o        Options
	cidrLeft int
	emit     func(proxy.Proxy)
	errs     errs
}

func (s *textScanner) scan() {
	for i := 0; i < len(s.b); {
		j := bytes.IndexByte(s.b[i:], ':')
		if j < 0 {
			return
		}
		c := i + j
		if end := s.at(c); end > c {
			i = end
		} else {
			i = c + 1
		}
	}
}

// at looks for a candidate whose port separator is the ':' at c. It returns the end of the
// candidate, or c when there is none.
func (s *textScanner) at(c int) int {
	b := s.b
	end, ok := portAfter(b, c)
	if !ok {
		return c
	}
	hs, ok := s.hostBefore(c)
	if !ok {
		return c
	}
	start, hasPrefix := prefixBefore(b, hs)
	host := b[hs:c]
	if bytes.IndexByte(host, '/') >= 0 {
		s.cidr(b[start:end], b[start:hs], host, b[c+1:end])
		return end
	}
	if !hasPrefix && end < len(b) && b[end] == ':' {
		if e := s.colonCreds(hs); e > 0 {
			return e
		}
	}
	if !hasPrefix {
		if p, ok := fastIPv4(host, b[c+1:end]); ok {
			s.foundIP(p)
			return end
		}
	}
	p, err := proxy.Parse(string(b[start:end]))
	if err != nil {
		return c
	}
	s.found(p)
	return end
}

// fastIPv4 is the common case, a bare IPv4 host:port, without the string conversions of
// proxy.Parse: it accepts exactly what Parse accepts for such text (FuzzFastIPv4 holds it to
// that) and reports false for anything else, which then goes through Parse.
func fastIPv4(host, port []byte) (proxy.Proxy, bool) {
	var a [4]byte
	k := 0
	for i := 0; i < 4; i++ {
		n, digits := 0, 0
		for k < len(host) && isDigit(host[k]) && digits < 4 {
			if digits == 1 && n == 0 {
				return proxy.Proxy{}, false // a leading zero
			}
			n = n*10 + int(host[k]-'0')
			k++
			digits++
		}
		if digits == 0 || n > 255 {
			return proxy.Proxy{}, false
		}
		a[i] = byte(n)
		if i < 3 {
			if k >= len(host) || host[k] != '.' {
				return proxy.Proxy{}, false
			}
			k++
		}
	}
	if k != len(host) || len(port) == 0 || len(port) > 5 {
		return proxy.Proxy{}, false
	}
	n := 0
	for _, d := range port {
		n = n*10 + int(d-'0')
	}
	if n < 1 || n > 65535 {
		return proxy.Proxy{}, false
	}
	return proxy.Proxy{Host: netip.AddrFrom4(a).String(), Port: uint16(n)}, true
}

func (s *textScanner) found(p proxy.Proxy) {
	if !s.o.Hostnames {
		if _, err := netip.ParseAddr(p.Host); err != nil {
			return
		}
	}
	s.foundIP(p)
}

// foundIP emits a candidate known to have an IP address.
func (s *textScanner) foundIP(p proxy.Proxy) {
	if p.Scheme == proxy.Unknown {
		p.Scheme = s.o.Scheme
	}
	s.emit(p)
}

// portAfter reads the decimal port after the ':' at c and returns its end. The port must not run
// on into a word ("1.2.3.4:80abc"), an e-mail-like '@', or more digits after a dot.
func portAfter(b []byte, c int) (int, bool) {
	k := c + 1
	for k < len(b) && k-c <= 6 && isDigit(b[k]) {
		k++
	}
	n := k - c - 1
	if n == 0 || n > 5 {
		return 0, false
	}
	if k < len(b) {
		switch x := b[k]; {
		case isLetter(x), x == '_', x == '@':
			return 0, false
		case x == '.' && k+1 < len(b) && isDigit(b[k+1]):
			return 0, false
		}
	}
	return k, true
}

// hostBefore finds the start of the host that ends at c: a bracketed IPv6 address (or range), or
// a run of IPv4 bytes ('/' for a range), or of host-name bytes when names are accepted. The byte
// before the host must not be part of a word.
func (s *textScanner) hostBefore(c int) (int, bool) {
	b := s.b
	if c == 0 {
		return 0, false
	}
	if b[c-1] == ']' {
		lb := bytes.LastIndexByte(b[max(0, c-52):c-1], '[')
		if lb < 0 {
			return 0, false
		}
		return max(0, c-52) + lb, true
	}
	hs := c
	for hs > 0 && c-hs <= 253 && s.hostByte(b[hs-1]) {
		hs--
	}
	for hs < c && (b[hs] == '.' || b[hs] == '/' || b[hs] == '-') {
		hs++
	}
	if hs == c || c-hs > 253 {
		return 0, false
	}
	if hs > 0 && (isLetter(b[hs-1]) || isDigit(b[hs-1]) || b[hs-1] == '_') {
		return 0, false
	}
	if !s.o.Hostnames && !looksIPv4(b[hs:c]) {
		return 0, false
	}
	return hs, true
}

func (s *textScanner) hostByte(x byte) bool {
	if isDigit(x) || x == '.' || x == '/' {
		return true
	}
	return s.o.Hostnames && (isLetter(x) || x == '-' || x == '_')
}

// looksIPv4 is a cheap filter before the real validation: digits and exactly three dots (and
// perhaps a /prefix).
func looksIPv4(h []byte) bool {
	if i := bytes.IndexByte(h, '/'); i >= 0 {
		h = h[:i]
	}
	return len(h) >= 7 && isDigit(h[0]) && bytes.Count(h, []byte{'.'}) == 3
}

// prefixBefore extends a candidate whose host starts at hs backwards over "user:pass@" and
// "scheme://". It returns the candidate's start and whether it has such a prefix.
func prefixBefore(b []byte, hs int) (int, bool) {
	p := hs
	if p > 1 && b[p-1] == '@' {
		x := p - 1
		for x > 0 && p-1-x < 256 && credByte(b[x-1]) {
			x--
		}
		if x < p-1 {
			p = x
		}
	}
	if p >= 4 && b[p-1] == '/' && b[p-2] == '/' && b[p-3] == ':' {
		x := p - 3
		for x > 0 && p-3-x < 16 && (isLetter(b[x-1]) || isDigit(b[x-1])) {
			x--
		}
		if x < p-3 && isLetter(b[x]) {
			p = x
		}
	}
	return p, p != hs
}

// colonCreds handles a line that is exactly host:port:user:pass (the list form for
// credentials without a scheme). It returns the end of the line, or 0 if the line is not that.
func (s *textScanner) colonCreds(hs int) int {
	b := s.b
	ls := hs
	for ls > 0 && (b[ls-1] == ' ' || b[ls-1] == '\t') {
		ls--
	}
	if ls > 0 && b[ls-1] != '\n' && b[ls-1] != '\r' {
		return 0
	}
	e := hs + bytes.IndexAny(b[hs:], "\r\n")
	if e < hs {
		e = len(b)
	}
	line := bytes.TrimRight(b[hs:e], " \t")
	if bytes.ContainsAny(line, " \t") || bytes.Count(line, []byte{':'}) < 3 {
		return 0
	}
	p, err := proxy.Parse(string(line))
	if err != nil || p.User == "" {
		return 0
	}
	s.found(p)
	return e
}

// cidr expands a range candidate: prefix is "scheme://user:pass@" (or empty), host the range
// ("10.0.0.0/24" or "[2001:db8::/120]"), port its digits.
func (s *textScanner) cidr(whole, prefix, host, port []byte) {
	text := strings.TrimSuffix(strings.TrimPrefix(string(host), "["), "]")
	pfx, err := netip.ParsePrefix(text)
	if err != nil || pfx.Addr().Zone() != "" {
		return
	}
	pfx = pfx.Masked()
	bits := pfx.Addr().BitLen() - pfx.Bits()
	size := new(big.Int).Lsh(big.NewInt(1), uint(bits))
	if !size.IsInt64() || size.Int64() > int64(s.cidrLeft) {
		s.errs.add(&RangeError{Range: string(whole), Size: size, Cap: s.cidrLeft})
		return
	}
	first := pfx.Addr()
	hostText := first.String()
	if first.Is6() {
		hostText = "[" + hostText + "]"
	}
	tmpl, err := proxy.Parse(string(prefix) + hostText + ":" + string(port))
	if err != nil {
		return
	}
	n := int(size.Int64())
	s.cidrLeft -= n
	for a, i := first, 0; i < n && a.IsValid(); a, i = a.Next(), i+1 {
		p := tmpl
		p.Host = a.String()
		s.found(p)
	}
}

func isDigit(x byte) bool  { return '0' <= x && x <= '9' }
func isLetter(x byte) bool { return 'a' <= x && x <= 'z' || 'A' <= x && x <= 'Z' }

// credByte reports whether x may be part of "user:pass" in running text: anything but white
// space, quotes, angle brackets, '/' and '@'.
func credByte(x byte) bool {
	switch x {
	case ' ', '\t', '\r', '\n', '"', '\'', '<', '>', '/', '@', '(', ')', '[', ']', '{', '}', ',', ';':
		return false
	}
	return x >= 0x20 && x != 0x7f
}
