package rotate

// The SOCKS5 server side (RFC 1928 CONNECT, RFC 1929 user/password) is written by hand: it is a
// few dozen lines, and the Go SOCKS5 server libraries dial for themselves, where the rotator must
// choose an upstream and dial through it.

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/proxyline/proxyline/internal/proxydial"
	"github.com/proxyline/proxyline/internal/secret"
)

// SOCKS5 server constants.
const (
	socksNoAuth       = 0x00
	socksUserPass     = 0x02
	socksNoAcceptable = 0xFF
	socksAuthVersion  = 0x01
	socksConnect      = 0x01

	repSucceeded       = 0x00
	repGeneralFailure  = 0x01
	repHostUnreachable = 0x04
	repConnRefused     = 0x05
	repTTLExpired      = 0x06
	repCmdUnsupported  = 0x07
	repAddrUnsupported = 0x08
)

// errSOCKS marks a malformed SOCKS5 message from a client.
var errSOCKS = errors.New("malformed socks5 message")

// serveSOCKS serves one SOCKS5 client whose first byte (the version) is next on c.
func (s *Server) serveSOCKS(c *trackedConn) {
	_ = c.SetDeadline(time.Now().Add(s.cfg.HeaderTimeout))
	br := bufio.NewReaderSize(c, 512)
	key, ok := s.socksHandshake(c, br)
	if !ok {
		return
	}
	target, rep, err := readSOCKSRequest(br)
	if err != nil {
		if rep != 0 {
			writeSOCKSReply(c, rep)
		}
		s.log.Debug("socks5 request", "remote", c.RemoteAddr(), "err", err)
		return
	}
	_ = c.SetDeadline(time.Time{})
	rt := &route{session: key}
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	u, up, err := s.dialTunnel(ctx, rt, target)
	if err != nil {
		writeSOCKSReply(c, socksReplyFor(err))
		s.log.Debug("socks5 tunnel failed", "target", target, "err", secret.Redact(err.Error()))
		return
	}
	if !writeSOCKSReply(c, repSucceeded) {
		_ = up.Close()
		return
	}
	s.runTunnel(c, br, up, u)
}

// socksHandshake negotiates the method and checks credentials; it returns the sticky key.
func (s *Server) socksHandshake(c net.Conn, br *bufio.Reader) (string, bool) {
	methods, err := readSOCKSGreeting(br)
	if err != nil {
		return "", false
	}
	// User/password when credentials are required, and also when the client offers it without
	// them: its user name may carry a session name.
	var method byte = socksNoAcceptable
	switch {
	case contains(methods, socksUserPass):
		method = socksUserPass
	case contains(methods, socksNoAuth) && !s.gate.Authenticated():
		method = socksNoAuth
	}
	if _, err := c.Write([]byte{socks5Version, method}); err != nil || method == socksNoAcceptable {
		return "", false
	}
	var user, pass string
	if method == socksUserPass {
		if user, pass, err = readSOCKSUserPass(br); err != nil {
			return "", false
		}
	}
	key, ok := s.in.admit(user, pass, method == socksUserPass, c.RemoteAddr())
	if method == socksUserPass {
		status := byte(0)
		if !ok {
			status = 1
		}
		if _, err := c.Write([]byte{socksAuthVersion, status}); err != nil {
			return "", false
		}
	}
	return key, ok
}

func contains(b []byte, x byte) bool {
	for _, c := range b {
		if c == x {
			return true
		}
	}
	return false
}

// readSOCKSGreeting reads VER NMETHODS METHODS (the version byte is checked by the caller's sniff
// but read again here).
func readSOCKSGreeting(r io.Reader) ([]byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	if h[0] != socks5Version || h[1] == 0 {
		return nil, fmt.Errorf("greeting %x: %w", h, errSOCKS)
	}
	m := make([]byte, h[1])
	if _, err := io.ReadFull(r, m); err != nil {
		return nil, err
	}
	return m, nil
}

// readSOCKSUserPass reads an RFC 1929 request.
func readSOCKSUserPass(r io.Reader) (user, pass string, err error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return "", "", err
	}
	if h[0] != socksAuthVersion {
		return "", "", fmt.Errorf("auth version %#x: %w", h[0], errSOCKS)
	}
	u := make([]byte, int(h[1])+1)
	if _, err := io.ReadFull(r, u); err != nil {
		return "", "", err
	}
	p := make([]byte, u[len(u)-1])
	if _, err := io.ReadFull(r, p); err != nil {
		return "", "", err
	}
	return string(u[:len(u)-1]), string(p), nil
}

// readSOCKSRequest reads a request; only CONNECT is served. On a refusal it returns the reply code
// to send (0: just close).
func readSOCKSRequest(r io.Reader) (target string, rep byte, err error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return "", 0, err
	}
	if h[0] != socks5Version {
		return "", 0, fmt.Errorf("request version %#x: %w", h[0], errSOCKS)
	}
	var host string
	switch h[3] {
	case 0x01, 0x04:
		a := make([]byte, 4+12*int(h[3]>>2))
		if _, err := io.ReadFull(r, a); err != nil {
			return "", 0, err
		}
		ip, _ := netip.AddrFromSlice(a)
		host = ip.Unmap().String()
	case 0x03:
		var l [1]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return "", 0, err
		}
		name := make([]byte, l[0])
		if _, err := io.ReadFull(r, name); err != nil {
			return "", 0, err
		}
		if !validHostName(name) {
			return "", repHostUnreachable, fmt.Errorf("host name %q: %w", name, errSOCKS)
		}
		host = string(name)
	default:
		return "", repAddrUnsupported, fmt.Errorf("address type %#x: %w", h[3], errSOCKS)
	}
	var p [2]byte
	if _, err := io.ReadFull(r, p[:]); err != nil {
		return "", 0, err
	}
	if h[1] != socksConnect {
		return "", repCmdUnsupported, fmt.Errorf("command %#x: only CONNECT is served", h[1])
	}
	port := binary.BigEndian.Uint16(p[:])
	if port == 0 {
		return "", repHostUnreachable, fmt.Errorf("port 0: %w", errSOCKS)
	}
	return net.JoinHostPort(host, strconv.Itoa(int(port))), 0, nil
}

// writeSOCKSReply writes a reply with the bound address 0.0.0.0:0 (the upstream's is unknown).
func writeSOCKSReply(c net.Conn, rep byte) bool {
	_, err := c.Write([]byte{socks5Version, rep, 0, 0x01, 0, 0, 0, 0, 0, 0})
	return err == nil
}

// socksReplyFor maps a tunnel failure to a reply: no upstream is a general failure; the
// upstream's own report about the target is passed on; a timeout is "TTL expired".
func socksReplyFor(err error) byte {
	var re *proxydial.ReplyError
	var ne net.Error
	switch {
	case errors.Is(err, errNoUpstream):
		return repGeneralFailure
	case errors.As(err, &re) && re.Kind == proxydial.Unreachable:
		if re.Code == repConnRefused || re.Code == 502 {
			return repConnRefused
		}
		return repHostUnreachable
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return repTTLExpired
	}
	return repGeneralFailure
}

// validHostName reports whether b can be a DNS name: letters, digits, '-', '_' and '.', not empty.
func validHostName(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
