package proxy

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Parse parses one proxy written in any of the text forms:
//
//	scheme://[user:pass@]host:port   mubeng's form; socks5h is read as socks5; one trailing "/" is allowed
//	host:port                        Scheme Unknown: the checker probes the protocol
//	host:port:user:pass              Scheme Unknown, with credentials; the password may contain ':'
//	user:pass@host:port              Scheme Unknown, with credentials
//
// IPv6 hosts are written in brackets: [::1]:8080. Surrounding white space is ignored; white space
// inside is an error. In the URL form the user and password may be %-escaped (as String writes
// them); a '%' not followed by two hex digits is taken literally. Scheme and host names are
// lower-cased and IP addresses written in their canonical form, so that equal proxies parse to
// equal values, and for every p that Parse returns, Parse(p.String()) returns p again.
//
// The error is a *LineError with Line 0 naming the field at fault.
func Parse(s string) (Proxy, error) {
	p, err := parse(s)
	if err != nil {
		return Proxy{}, err
	}
	return p, nil
}

// parse is Parse returning the concrete error type, so callers can add the line without a type
// assertion and without the nil-interface trap.
func parse(s string) (Proxy, *LineError) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Proxy{}, fieldError("", "", ErrSyntax)
	}
	if strings.IndexFunc(s, unicode.IsSpace) >= 0 {
		return Proxy{}, fieldError("", s, fmt.Errorf("%w: it contains white space", ErrSyntax))
	}
	if i := schemeEnd(s); i > 0 {
		return parseURL(s, i)
	}
	p, errColon := parseColon(s)
	if errColon == nil {
		return p, nil
	}
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		if unbracketedIPv6(s) {
			return Proxy{}, fieldError("host", s, ErrIPv6)
		}
		return Proxy{}, errColon
	}
	p, errAt := parseAt(s, at)
	if errAt == nil {
		return p, nil
	}
	// Both readings failed: report the error of the form the writer most likely meant. In
	// user:pass@host:port the '@' comes before the second ':'; in host:port:user:pass after it.
	first := strings.IndexByte(s, ':')
	second := -1
	if first >= 0 {
		if j := strings.IndexByte(s[first+1:], ':'); j >= 0 {
			second = first + 1 + j
		}
	}
	if second >= 0 && at > second {
		return Proxy{}, errColon
	}
	return Proxy{}, errAt
}

// schemeEnd returns the index of "://" when s starts with a URL scheme (a letter, then letters,
// digits, '+', '-' or '.'), else -1.
func schemeEnd(s string) int {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		case i > 0 && c == ':' && strings.HasPrefix(s[i:], "://"):
			return i
		default:
			return -1
		}
	}
	return -1
}

// parseURL parses scheme://[user:pass@]host:port[/]; i is the index of "://".
func parseURL(s string, i int) (Proxy, *LineError) {
	scheme, err := parseScheme(s[:i])
	if err != nil {
		return Proxy{}, err
	}
	rest := strings.TrimSuffix(s[i+3:], "/")
	var p Proxy
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		user, pass, _ := strings.Cut(rest[:at], ":")
		p.User, p.Password = unescape(user), unescape(pass)
		rest = rest[at+1:]
	}
	host, port, err := splitHostPort(rest)
	if err != nil {
		return Proxy{}, err
	}
	p.Scheme, p.Host, p.Port = scheme, host, port
	return p, checkCredentials(p)
}

// parseColon parses host:port and host:port:user:pass.
func parseColon(s string) (Proxy, *LineError) {
	var hostText, rest string
	if s[0] == '[' {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return Proxy{}, fieldError("host", s, fmt.Errorf("%w: no closing ']'", ErrHost))
		}
		hostText, rest = s[:end+1], s[end+1:]
		if rest != "" && rest[0] != ':' {
			return Proxy{}, fieldError("", s, ErrSyntax)
		}
		rest = strings.TrimPrefix(rest, ":")
	} else {
		hostText, rest, _ = strings.Cut(s, ":")
	}
	host, err := parseHost(hostText, false)
	if err != nil {
		return Proxy{}, err
	}
	portText, creds, hasCreds := strings.Cut(rest, ":")
	port, err := parsePort(portText)
	if err != nil {
		return Proxy{}, err
	}
	p := Proxy{Host: host, Port: port}
	if hasCreds {
		user, pass, ok := strings.Cut(creds, ":")
		if !ok {
			return Proxy{}, fieldError("password", "", ErrMissing)
		}
		p.User, p.Password = user, pass
	}
	return p, checkCredentials(p)
}

// parseAt parses user:pass@host:port; at is the index of the last '@'.
func parseAt(s string, at int) (Proxy, *LineError) {
	host, port, err := splitHostPort(s[at+1:])
	if err != nil {
		return Proxy{}, err
	}
	user, pass, _ := strings.Cut(s[:at], ":")
	p := Proxy{Host: host, Port: port, User: user, Password: pass}
	return p, checkCredentials(p)
}

// splitHostPort parses host:port where an IPv6 host must be in brackets.
func splitHostPort(s string) (string, uint16, *LineError) {
	var hostText, portText string
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", 0, fieldError("host", s, fmt.Errorf("%w: no closing ']'", ErrHost))
		}
		hostText = s[:end+1]
		switch rest := s[end+1:]; {
		case rest == "":
		case rest[0] == ':':
			portText = rest[1:]
		default:
			return "", 0, fieldError("", s, ErrSyntax)
		}
	} else {
		i := strings.LastIndexByte(s, ':')
		if i < 0 {
			hostText = s
		} else {
			hostText, portText = s[:i], s[i+1:]
		}
		if strings.IndexByte(hostText, ':') >= 0 {
			if unbracketedIPv6(s) {
				return "", 0, fieldError("host", s, ErrIPv6)
			}
			return "", 0, fieldError("host", hostText, ErrHost)
		}
	}
	host, err := parseHost(hostText, false)
	if err != nil {
		return "", 0, err
	}
	port, err := parsePort(portText)
	if err != nil {
		return "", 0, err
	}
	return host, port, nil
}

// unbracketedIPv6 reports whether s, or s without a trailing :port, is an IPv6 address.
func unbracketedIPv6(s string) bool {
	if strings.Count(s, ":") < 2 {
		return false
	}
	if a, err := netip.ParseAddr(s); err == nil && a.Is6() {
		return true
	}
	if i := strings.LastIndexByte(s, ':'); i > 0 {
		if a, err := netip.ParseAddr(s[:i]); err == nil && a.Is6() {
			return true
		}
	}
	return false
}

// parseScheme maps a scheme name, in any case, to a Scheme; socks5h is socks5. An empty name is
// Unknown.
func parseScheme(s string) (Scheme, *LineError) {
	switch sc := Scheme(strings.ToLower(strings.TrimSpace(s))); sc {
	case HTTP, HTTPS, SOCKS4, SOCKS4A, SOCKS5, Unknown:
		return sc, nil
	case "socks5h":
		return SOCKS5, nil
	}
	return "", fieldError("scheme", s, ErrScheme)
}

// parseHost checks a host and returns it in canonical form: IP addresses as netip writes them,
// names lower-cased. A name is up to 253 letters, digits, '-', '_' and '.'; one made of digits and
// dots only must be a valid IPv4 address. IPv6 addresses must be in brackets unless bare is true
// (JSON and CSV fields), and may not carry a zone.
func parseHost(s string, bare bool) (string, *LineError) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", fieldError("host", "", ErrMissing)
	}
	if s[0] == '[' {
		if s[len(s)-1] != ']' {
			return "", fieldError("host", s, fmt.Errorf("%w: no closing ']'", ErrHost))
		}
		a, err := netip.ParseAddr(s[1 : len(s)-1])
		if err != nil || !a.Is6() {
			return "", fieldError("host", s, fmt.Errorf("%w: brackets hold only IPv6 addresses", ErrHost))
		}
		if a.Zone() != "" {
			return "", fieldError("host", s, fmt.Errorf("%w: IPv6 zones are not supported", ErrHost))
		}
		return a.String(), nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		switch {
		case a.Zone() != "":
			return "", fieldError("host", s, fmt.Errorf("%w: IPv6 zones are not supported", ErrHost))
		case a.Is6() && !bare:
			return "", fieldError("host", s, ErrIPv6)
		}
		return a.String(), nil
	}
	if len(s) > 253 {
		return "", fieldError("host", s, fmt.Errorf("%w: longer than 253 bytes", ErrHost))
	}
	numeric := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case '0' <= c && c <= '9', c == '.':
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '-', c == '_':
			numeric = false
		default:
			return "", fieldError("host", s, ErrHost)
		}
	}
	if numeric {
		return "", fieldError("host", s, fmt.Errorf("%w: not a valid IPv4 address", ErrHost))
	}
	return strings.ToLower(s), nil
}

// parsePort parses a decimal port number, 1-65535.
func parsePort(s string) (uint16, *LineError) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fieldError("port", "", ErrMissing)
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, fieldError("port", s, ErrPortSyntax)
		}
		if n <= 65535 {
			n = n*10 + int(c-'0')
		}
	}
	if n < 1 || n > 65535 {
		return 0, fieldError("port", s, ErrPortRange)
	}
	return uint16(n), nil
}

// checkCredentials rejects credentials that no output format could carry back: invalid UTF-8 and
// control characters anywhere, and, when the scheme is Unknown (written host:port:user:pass),
// white space anywhere and ':' in the user.
func checkCredentials(p Proxy) *LineError {
	for _, f := range [...]struct{ name, v string }{{"user", p.User}, {"password", p.Password}} {
		if !utf8.ValidString(f.v) {
			return fieldError(f.name, f.v, fmt.Errorf("%w: not valid UTF-8", ErrCredentials))
		}
		if strings.IndexFunc(f.v, unicode.IsControl) >= 0 {
			return fieldError(f.name, f.v, fmt.Errorf("%w: it contains a control character", ErrCredentials))
		}
		if p.Scheme != Unknown {
			continue
		}
		if strings.IndexFunc(f.v, unicode.IsSpace) >= 0 {
			return fieldError(f.name, f.v, fmt.Errorf("%w: white space needs a scheme (host:port:user:pass cannot hold it)", ErrCredentials))
		}
		if f.name == "user" && strings.IndexByte(f.v, ':') >= 0 {
			return fieldError(f.name, f.v, fmt.Errorf("%w: ':' in a user needs a scheme (host:port:user:pass cannot hold it)", ErrCredentials))
		}
	}
	return nil
}

// unescape undoes %-escaping as url.URL.String writes it; text that is not validly escaped is
// taken literally, as users write passwords that contain '%'.
func unescape(s string) string {
	if strings.IndexByte(s, '%') < 0 {
		return s
	}
	u, err := url.PathUnescape(s)
	if err != nil {
		return s
	}
	return u
}

// build makes a Proxy from separate fields, as JSON objects and CSV columns give them.
func build(scheme, host, port, user, pass string) (Proxy, *LineError) {
	sc, err := parseScheme(scheme)
	if err != nil {
		return Proxy{}, err
	}
	h, err := parseHost(host, true)
	if err != nil {
		return Proxy{}, err
	}
	pt, err := parsePort(port)
	if err != nil {
		return Proxy{}, err
	}
	p := Proxy{Scheme: sc, Host: h, Port: pt, User: user, Password: pass}
	return p, checkCredentials(p)
}

// FromFields makes a Proxy from separate fields, as a JSON object, a CSV row or an HTML table
// row gives them: scheme (any case, "" for unknown, socks5h is socks5), host (an IPv6 address
// with or without brackets), port (decimal) and optional credentials. It applies the same
// validation as Parse; the error is a *LineError naming the field.
func FromFields(scheme, host, port, user, password string) (Proxy, error) {
	p, err := build(scheme, host, port, user, password)
	if err != nil {
		return Proxy{}, err
	}
	return p, nil
}
