// Package proxy is the proxy value shared by every part of proxyline: a scheme, an address and
// optional credentials, with parsing of the list formats users have (mubeng's
// scheme://[user:pass@]host:port lines, bare host:port, host:port:user:pass, JSON lines, CSV) and
// formatting back to them. It has no dependencies on the rest of the project so that other
// programs can import it.
package proxy

import (
	"net"
	"net/url"
	"strconv"
)

// Scheme is the protocol a proxy speaks. The zero value, Unknown, is a proxy given as a bare
// host:port whose protocol has not been probed yet.
type Scheme string

// The schemes proxyline knows.
const (
	Unknown Scheme = ""
	HTTP    Scheme = "http"    // plain HTTP proxy: absolute-URI requests and CONNECT
	HTTPS   Scheme = "https"   // HTTP proxy reached over TLS
	SOCKS4  Scheme = "socks4"  // SOCKS4: the client resolves names
	SOCKS4A Scheme = "socks4a" // SOCKS4a: the proxy resolves names
	SOCKS5  Scheme = "socks5"  // SOCKS5, optionally with user/password
)

// Schemes lists the known schemes in the order a protocol probe tries them.
func Schemes() []Scheme { return []Scheme{HTTP, SOCKS5, SOCKS4, HTTPS, SOCKS4A} }

// Valid reports whether s is a known scheme or Unknown.
func (s Scheme) Valid() bool {
	switch s {
	case Unknown, HTTP, HTTPS, SOCKS4, SOCKS4A, SOCKS5:
		return true
	}
	return false
}

// Proxy is one proxy. It is a comparable value: two Proxies are the same proxy when they are ==.
type Proxy struct {
	Scheme   Scheme
	Host     string // IP address or name, without brackets for IPv6
	Port     uint16
	User     string // empty when the proxy needs no authentication
	Password string
}

// Addr returns host:port, with IPv6 hosts in brackets.
func (p Proxy) Addr() string { return net.JoinHostPort(p.Host, strconv.Itoa(int(p.Port))) }

// Key identifies the proxy regardless of credentials and scheme: host:port. The pool and the
// deduplication of lists use it.
func (p Proxy) Key() string { return p.Addr() }

// String formats the proxy in mubeng's format, scheme://[user:pass@]host:port, or as a bare
// host:port when the scheme is Unknown (credentials are then written host:port:user:pass).
func (p Proxy) String() string {
	if p.Scheme == Unknown {
		if p.User != "" || p.Password != "" {
			return p.Addr() + ":" + p.User + ":" + p.Password
		}
		return p.Addr()
	}
	u := url.URL{Scheme: string(p.Scheme), Host: p.Addr()}
	if p.User != "" || p.Password != "" {
		u.User = url.UserPassword(p.User, p.Password)
	}
	return u.String()
}

// Redacted is String with the password, if any, replaced by "xxxxx" (as net/url's
// URL.Redacted): for logs and messages, which must never show a proxy's password.
func (p Proxy) Redacted() string {
	if p.Password != "" {
		p.Password = "xxxxx"
	}
	return p.String()
}

// URL returns the proxy as a *url.URL, as net/http's Transport.Proxy expects.
func (p Proxy) URL() *url.URL {
	u := &url.URL{Scheme: string(p.Scheme), Host: p.Addr()}
	if p.User != "" || p.Password != "" {
		u.User = url.UserPassword(p.User, p.Password)
	}
	return u
}
