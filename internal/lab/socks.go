package lab

// SOCKS4, SOCKS4a and SOCKS5 (RFC 1928, with RFC 1929 user/password) server sides are written by
// hand: only the CONNECT command is needed, each is a few dozen lines, and the well-known Go
// SOCKS libraries are clients (golang.org/x/net/proxy) or full servers whose dialing and
// resolution we would have to override anyway to keep the lab loopback-only and bound to each
// proxy's own address.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// SOCKS constants.
const (
	socks4Version  = 0x04
	socks5Version  = 0x05
	socksConnect   = 0x01
	socks4Granted  = 0x5A
	socks4Rejected = 0x5B

	socks5NoAuth       = 0x00
	socks5UserPass     = 0x02
	socks5NoAcceptable = 0xFF
	socks5AuthVersion  = 0x01

	socks5Succeeded        = 0x00
	socks5GeneralFailure   = 0x01
	socks5NotAllowed       = 0x02
	socks5HostUnreachable  = 0x04
	socks5ConnRefused      = 0x05
	socks5CmdNotSupported  = 0x07
	socks5AddrNotSupported = 0x08

	atypIPv4   = 0x01
	atypDomain = 0x03
	atypIPv6   = 0x04

	maxSOCKSField = 255 // longest user id or domain name accepted in SOCKS4/4a
)

// errSOCKS marks a malformed SOCKS message.
var errSOCKS = errors.New("malformed socks message")

// socks4Request is a parsed SOCKS4 or SOCKS4a request.
type socks4Request struct {
	cmd    byte
	port   uint16
	ip     [4]byte
	user   string
	domain string // set for SOCKS4a (ip is 0.0.0.x with x != 0)
}

// readSOCKS4 parses a SOCKS4/4a request whose version byte is next in r.
func readSOCKS4(r *bufio.Reader) (socks4Request, error) {
	// Check the version before waiting for the rest: a probe speaking another protocol gets
	// its answer (a closed connection) at once.
	if v, err := r.Peek(1); err != nil {
		return socks4Request{}, fmt.Errorf("socks4 version: %w", err)
	} else if v[0] != socks4Version {
		return socks4Request{}, fmt.Errorf("socks4 version %#x: %w", v[0], errSOCKS)
	}
	var hdr [8]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return socks4Request{}, fmt.Errorf("socks4 header: %w", err)
	}
	req := socks4Request{cmd: hdr[1], port: uint16(hdr[2])<<8 | uint16(hdr[3]), ip: [4]byte(hdr[4:8])}
	user, err := readCString(r)
	if err != nil {
		return socks4Request{}, fmt.Errorf("socks4 user id: %w", err)
	}
	req.user = user
	if req.ip[0] == 0 && req.ip[1] == 0 && req.ip[2] == 0 && req.ip[3] != 0 {
		if req.domain, err = readCString(r); err != nil {
			return socks4Request{}, fmt.Errorf("socks4a domain: %w", err)
		}
		if req.domain == "" {
			return socks4Request{}, fmt.Errorf("socks4a empty domain: %w", errSOCKS)
		}
	}
	return req, nil
}

// readCString reads a NUL-terminated string of at most maxSOCKSField bytes.
func readCString(r *bufio.Reader) (string, error) {
	var b []byte
	for {
		c, err := r.ReadByte()
		if err != nil {
			return "", err
		}
		if c == 0 {
			return string(b), nil
		}
		if len(b) == maxSOCKSField {
			return "", fmt.Errorf("string longer than %d bytes: %w", maxSOCKSField, errSOCKS)
		}
		b = append(b, c)
	}
}

// readSOCKS5Greeting parses the method selection message.
func readSOCKS5Greeting(r *bufio.Reader) ([]byte, error) {
	if v, err := r.Peek(1); err != nil {
		return nil, fmt.Errorf("socks5 version: %w", err)
	} else if v[0] != socks5Version {
		return nil, fmt.Errorf("socks5 version %#x: %w", v[0], errSOCKS)
	}
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("socks5 greeting: %w", err)
	}
	if hdr[1] == 0 {
		return nil, fmt.Errorf("socks5 greeting without methods: %w", errSOCKS)
	}
	methods := make([]byte, hdr[1])
	if _, err := io.ReadFull(r, methods); err != nil {
		return nil, fmt.Errorf("socks5 methods: %w", err)
	}
	return methods, nil
}

// readSOCKS5Auth parses an RFC 1929 user/password request.
func readSOCKS5Auth(r *bufio.Reader) (user, pass string, err error) {
	ver, err := r.ReadByte()
	if err != nil {
		return "", "", fmt.Errorf("socks5 auth: %w", err)
	}
	if ver != socks5AuthVersion {
		return "", "", fmt.Errorf("socks5 auth version %#x: %w", ver, errSOCKS)
	}
	if user, err = readPString(r); err != nil {
		return "", "", fmt.Errorf("socks5 auth user: %w", err)
	}
	if pass, err = readPString(r); err != nil {
		return "", "", fmt.Errorf("socks5 auth password: %w", err)
	}
	return user, pass, nil
}

// readPString reads a string prefixed by its one-byte length.
func readPString(r *bufio.Reader) (string, error) {
	n, err := r.ReadByte()
	if err != nil {
		return "", err
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", err
	}
	return string(b), nil
}

// socks5Request is a parsed SOCKS5 request.
type socks5Request struct {
	cmd  byte
	atyp byte
	host string // IP literal or domain name
	port uint16
}

// readSOCKS5Request parses a SOCKS5 request.
func readSOCKS5Request(r *bufio.Reader) (socks5Request, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return socks5Request{}, fmt.Errorf("socks5 request: %w", err)
	}
	if hdr[0] != socks5Version {
		return socks5Request{}, fmt.Errorf("socks5 request version %#x: %w", hdr[0], errSOCKS)
	}
	if hdr[2] != 0 {
		return socks5Request{}, fmt.Errorf("socks5 request reserved byte %#x: %w", hdr[2], errSOCKS)
	}
	req := socks5Request{cmd: hdr[1], atyp: hdr[3]}
	switch req.atyp {
	case atypIPv4:
		var a [4]byte
		if _, err := io.ReadFull(r, a[:]); err != nil {
			return socks5Request{}, fmt.Errorf("socks5 IPv4 address: %w", err)
		}
		req.host = netip.AddrFrom4(a).String()
	case atypIPv6:
		var a [16]byte
		if _, err := io.ReadFull(r, a[:]); err != nil {
			return socks5Request{}, fmt.Errorf("socks5 IPv6 address: %w", err)
		}
		req.host = netip.AddrFrom16(a).String()
	case atypDomain:
		name, err := readPString(r)
		if err != nil {
			return socks5Request{}, fmt.Errorf("socks5 domain: %w", err)
		}
		if name == "" {
			return socks5Request{}, fmt.Errorf("socks5 empty domain: %w", errSOCKS)
		}
		req.host = name
	default:
		return req, fmt.Errorf("socks5 address type %#x: %w", req.atyp, errSOCKS)
	}
	var p [2]byte
	if _, err := io.ReadFull(r, p[:]); err != nil {
		return socks5Request{}, fmt.Errorf("socks5 port: %w", err)
	}
	req.port = uint16(p[0])<<8 | uint16(p[1])
	return req, nil
}

// serveSOCKS serves one connection to a SOCKS proxy.
func (l *Lab) serveSOCKS(c net.Conn, e *entry) {
	_ = c.SetDeadline(time.Now().Add(headTimeout))
	br := bufio.NewReaderSize(c, 512)
	var up net.Conn
	switch e.svc {
	case svcSOCKS4, svcSOCKS4A:
		up = l.socks4(c, br, e)
	case svcSOCKS5:
		up = l.socks5(c, br, e)
	}
	if up == nil {
		return
	}
	defer l.untrack(up)
	_ = c.SetDeadline(time.Time{})
	l.tunnel(c, br, up, nil)
}

// socks4 runs the SOCKS4/4a handshake and returns the connection to the target, or nil.
func (l *Lab) socks4(c net.Conn, br *bufio.Reader, e *entry) net.Conn {
	req, err := readSOCKS4(br)
	if err != nil {
		l.log.Debug("lab socks4", "proxy", e.addr, "err", err)
		return nil
	}
	reply := func(code byte, bound netip.AddrPort) bool {
		ip := bound.Addr().As4()
		msg := []byte{0, code, byte(bound.Port() >> 8), byte(bound.Port()), ip[0], ip[1], ip[2], ip[3]}
		_, err := c.Write(msg)
		return err == nil
	}
	if req.cmd != socksConnect || (req.domain != "" && e.svc != svcSOCKS4A) {
		reply(socks4Rejected, netip.AddrPortFrom(netip.IPv4Unspecified(), 0))
		return nil
	}
	var target netip.AddrPort
	if req.domain != "" {
		target, err = resolveHost(req.domain, req.port, l.hosts)
	} else {
		target, err = resolveHost(netip.AddrFrom4(req.ip).String(), req.port, l.hosts)
	}
	if err == nil {
		var up net.Conn
		if up, err = l.dialOut(e, target); err == nil {
			if reply(socks4Granted, boundAddr(up)) {
				return up
			}
			l.untrack(up)
			return nil
		}
	}
	l.log.Debug("lab socks4 connect", "proxy", e.addr, "err", err)
	reply(socks4Rejected, netip.AddrPortFrom(netip.IPv4Unspecified(), 0))
	return nil
}

// socks5 runs the SOCKS5 handshake (with RFC 1929 authentication when e demands it) and returns
// the connection to the target, or nil.
func (l *Lab) socks5(c net.Conn, br *bufio.Reader, e *entry) net.Conn {
	if !l.socks5Handshake(c, br, e) {
		return nil
	}
	req, err := readSOCKS5Request(br)
	none := netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
	if err != nil {
		l.log.Debug("lab socks5 request", "proxy", e.addr, "err", err)
		if errors.Is(err, errSOCKS) && req.atyp != 0 && req.atyp != atypIPv4 && req.atyp != atypIPv6 && req.atyp != atypDomain {
			socks5Reply(c, socks5AddrNotSupported, none)
		}
		return nil
	}
	if req.cmd != socksConnect {
		socks5Reply(c, socks5CmdNotSupported, none)
		return nil
	}
	target, err := resolveHost(req.host, req.port, l.hosts)
	if err != nil {
		socks5Reply(c, socks5NotAllowed, none)
		return nil
	}
	up, err := l.dialOut(e, target)
	if err != nil {
		code := byte(socks5HostUnreachable)
		switch {
		case errors.Is(err, syscall.ECONNREFUSED):
			code = socks5ConnRefused
		case l.ctx.Err() != nil:
			code = socks5GeneralFailure
		}
		socks5Reply(c, code, none)
		return nil
	}
	if !socks5Reply(c, socks5Succeeded, boundAddr(up)) {
		l.untrack(up)
		return nil
	}
	return up
}

// socks5Handshake reads the greeting, picks the entry's method (no auth, or username/password
// when it has credentials) and checks the credentials. It reports whether the client may go on
// to its request; on false the connection is done (a refusal was sent where the protocol has
// one).
func (l *Lab) socks5Handshake(c net.Conn, br *bufio.Reader, e *entry) bool {
	methods, err := readSOCKS5Greeting(br)
	if err != nil {
		l.log.Debug("lab socks5", "proxy", e.addr, "err", err)
		return false
	}
	want := byte(socks5NoAuth)
	if e.needsAuth() {
		want = socks5UserPass
	}
	offered := false
	for _, m := range methods {
		offered = offered || m == want
	}
	if !offered {
		_, _ = c.Write([]byte{socks5Version, socks5NoAcceptable})
		return false
	}
	if _, err := c.Write([]byte{socks5Version, want}); err != nil {
		return false
	}
	if !e.needsAuth() {
		return true
	}
	user, pass, err := readSOCKS5Auth(br)
	if err != nil {
		l.log.Debug("lab socks5 auth", "proxy", e.addr, "err", err)
		return false
	}
	if user != e.user || pass != e.pass {
		_, _ = c.Write([]byte{socks5AuthVersion, 0x01})
		return false
	}
	_, err = c.Write([]byte{socks5AuthVersion, 0x00})
	return err == nil
}

// socks5Reply writes a SOCKS5 reply with the bound address; it reports whether the write
// succeeded.
func socks5Reply(c net.Conn, code byte, bound netip.AddrPort) bool {
	msg := []byte{socks5Version, code, 0}
	if a := bound.Addr(); a.Is6() && !a.Is4In6() {
		msg = append(msg, atypIPv6)
		msg = append(msg, a.AsSlice()...)
	} else {
		ip := a.Unmap().As4()
		msg = append(msg, atypIPv4, ip[0], ip[1], ip[2], ip[3])
	}
	msg = append(msg, byte(bound.Port()>>8), byte(bound.Port()))
	_, err := c.Write(msg)
	return err == nil
}

// boundAddr returns the local address of an outbound connection.
func boundAddr(c net.Conn) netip.AddrPort {
	if ta, ok := c.LocalAddr().(*net.TCPAddr); ok {
		return ta.AddrPort()
	}
	return netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
}
