package proxydial

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
)

// SOCKS5 constants (RFC 1928, RFC 1929).
const (
	socks5Version      = 0x05
	socks5NoAuth       = 0x00
	socks5UserPass     = 0x02
	socks5NoAcceptable = 0xFF
	socks5Connect      = 0x01
	socks5ATYPIPv4     = 0x01
	socks5ATYPDomain   = 0x03
	socks5ATYPIPv6     = 0x04
	socks5AuthVersion  = 0x01
)

// SOCKS4 constants.
const (
	socks4Version  = 0x04
	socks4Connect  = 0x01
	socks4Granted  = 0x5A
	socks4Rejected = 0x5B
	socks4NoIdentd = 0x5C
	socks4BadIdent = 0x5D
)

// Target is where a proxy is asked to connect: an IP address, or a host name (for SOCKS4a and
// SOCKS5 the proxy resolves it), and a port. When IP is valid it is used; Host then only names the
// target in errors.
type Target struct {
	IP   netip.Addr
	Host string
	Port uint16
}

// ParseTarget parses host:port; an IP literal host fills IP.
func ParseTarget(hostport string) (Target, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return Target{}, fmt.Errorf("target %q: %w", hostport, err)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return Target{}, fmt.Errorf("target %q: bad port", hostport)
	}
	if host == "" {
		return Target{}, fmt.Errorf("target %q: no host", hostport)
	}
	t := Target{Host: host, Port: uint16(n)}
	if ip, err := netip.ParseAddr(host); err == nil && ip.Zone() == "" {
		t.IP = ip.Unmap()
	}
	return t, nil
}

// String returns host:port.
func (t Target) String() string {
	h := t.Host
	if t.IP.IsValid() {
		h = t.IP.String()
	}
	return net.JoinHostPort(h, strconv.Itoa(int(t.Port)))
}

// SOCKS5 runs the SOCKS5 handshake on w (writes) and br (reads), asking the proxy to connect to t,
// offering user/password authentication when user or pass is set. buf is scratch space (at least
// 512 bytes avoids growing it). It returns a *ReplyError when the proxy answered with anything but
// success, and the I/O error (wrapped with the step) otherwise.
func SOCKS5(w io.Writer, br *bufio.Reader, user, pass string, t Target, buf []byte) error {
	creds := user != "" || pass != ""
	b := buf[:0]
	if creds {
		if len(user) > 255 || len(pass) > 255 {
			return replyErr(Auth, 0, "socks5: user or password longer than 255 bytes")
		}
		b = append(b, socks5Version, 2, socks5NoAuth, socks5UserPass)
	} else {
		b = append(b, socks5Version, 1, socks5NoAuth)
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("socks5 greeting: %w", err)
	}
	method, err := ReadSOCKS5Method(br)
	if err != nil {
		return fmt.Errorf("socks5 greeting: %w", err)
	}
	switch method {
	case socks5NoAuth:
	case socks5UserPass:
		if !creds {
			return replyErr(Auth, int(method), "socks5: proxy wants a user and password")
		}
		b = append(buf[:0], socks5AuthVersion, byte(len(user)))
		b = append(b, user...)
		b = append(b, byte(len(pass)))
		b = append(b, pass...)
		if _, err := w.Write(b); err != nil {
			return fmt.Errorf("socks5 authentication: %w", err)
		}
		if err := ReadSOCKS5AuthReply(br); err != nil {
			return fmt.Errorf("socks5 authentication: %w", err)
		}
	case socks5NoAcceptable:
		if creds {
			return replyErr(Auth, int(method), "socks5: proxy accepts neither no-auth nor user/password")
		}
		return replyErr(Auth, int(method), "socks5: proxy accepts no unauthenticated clients")
	default:
		return replyErr(BadReply, int(method), "socks5: proxy chose method %#x we did not offer", method)
	}
	b, err = appendSOCKS5Request(buf[:0], t)
	if err != nil {
		return err
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("socks5 connect request: %w", err)
	}
	if err := ReadSOCKS5Reply(br); err != nil {
		return fmt.Errorf("socks5 connect: %w", err)
	}
	return nil
}

func appendSOCKS5Request(b []byte, t Target) ([]byte, error) {
	b = append(b, socks5Version, socks5Connect, 0)
	switch {
	case t.IP.Is4():
		a := t.IP.As4()
		b = append(b, socks5ATYPIPv4)
		b = append(b, a[:]...)
	case t.IP.Is6():
		a := t.IP.As16()
		b = append(b, socks5ATYPIPv6)
		b = append(b, a[:]...)
	default:
		if len(t.Host) > 255 || t.Host == "" {
			return nil, replyErr(Unreachable, 0, "socks5: target host name %q empty or longer than 255 bytes", trunc(t.Host))
		}
		b = append(b, socks5ATYPDomain, byte(len(t.Host)))
		b = append(b, t.Host...)
	}
	return binary.BigEndian.AppendUint16(b, t.Port), nil
}

// ReadSOCKS5Method reads the server's method selection.
func ReadSOCKS5Method(r io.Reader) (byte, error) {
	var b [2]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return 0, err
	}
	if b[0] != socks5Version {
		return 0, replyErr(BadReply, int(b[0]), "not a SOCKS5 reply (version %#x)", b[0])
	}
	return b[1], nil
}

// ReadSOCKS5AuthReply reads the RFC 1929 status; non-zero is a rejection of our credentials.
func ReadSOCKS5AuthReply(r io.Reader) error {
	var b [2]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return err
	}
	if b[0] != socks5AuthVersion && b[0] != socks5Version { // some servers answer with 5
		return replyErr(BadReply, int(b[0]), "not a SOCKS5 authentication reply (version %#x)", b[0])
	}
	if b[1] != 0 {
		return replyErr(Auth, int(b[1]), "credentials rejected (status %#x)", b[1])
	}
	return nil
}

// ReadSOCKS5Reply reads the reply to CONNECT, including the bound address, and classes a
// refusal: the proxy's own failures to reach the target (codes 0x01 to 0x06) are Unreachable.
func ReadSOCKS5Reply(r io.Reader) error {
	var b [4]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return err
	}
	if b[0] != socks5Version {
		return replyErr(BadReply, int(b[0]), "not a SOCKS5 reply (version %#x)", b[0])
	}
	var n int
	switch b[3] {
	case socks5ATYPIPv4:
		n = 4 + 2
	case socks5ATYPIPv6:
		n = 16 + 2
	case socks5ATYPDomain:
		var l [1]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return err
		}
		n = int(l[0]) + 2
	default:
		return replyErr(BadReply, int(b[3]), "SOCKS5 reply with address type %#x", b[3])
	}
	var skip [258]byte
	if _, err := io.ReadFull(r, skip[:n]); err != nil {
		return err
	}
	switch rep := b[1]; rep {
	case 0x00:
		return nil
	case 0x01, 0x02, 0x03, 0x04, 0x05, 0x06:
		return replyErr(Unreachable, int(rep), "proxy failed to connect to the target: %s", SOCKS5ReplyText(rep))
	default:
		return replyErr(BadReply, int(rep), "proxy refused the request: %s", SOCKS5ReplyText(rep))
	}
}

// SOCKS5ReplyText names a SOCKS5 reply code.
func SOCKS5ReplyText(rep byte) string {
	switch rep {
	case 0x00:
		return "succeeded"
	case 0x01:
		return "general SOCKS server failure"
	case 0x02:
		return "connection not allowed by ruleset"
	case 0x03:
		return "network unreachable"
	case 0x04:
		return "host unreachable"
	case 0x05:
		return "connection refused"
	case 0x06:
		return "TTL expired"
	case 0x07:
		return "command not supported"
	case 0x08:
		return "address type not supported"
	}
	return fmt.Sprintf("reply code %#x", rep)
}

// SOCKS4 runs the SOCKS4 (or, with socks4a, SOCKS4a) handshake asking the proxy to connect to t.
// SOCKS4 needs t.IP to be an IPv4 address (the caller resolves names); SOCKS4a sends t.Host when
// t.IP is not set, for the proxy to resolve. user is the SOCKS4 user id.
func SOCKS4(w io.Writer, br *bufio.Reader, user string, socks4a bool, t Target, buf []byte) error {
	if len(user) > 255 {
		return replyErr(Auth, 0, "socks4: user id longer than 255 bytes")
	}
	b := append(buf[:0], socks4Version, socks4Connect)
	b = binary.BigEndian.AppendUint16(b, t.Port)
	useName := socks4a && !t.IP.IsValid()
	switch {
	case useName:
		if len(t.Host) > 255 || t.Host == "" {
			return replyErr(Unreachable, 0, "socks4a: target host name %q empty or longer than 255 bytes", trunc(t.Host))
		}
		b = append(b, 0, 0, 0, 1)
	case t.IP.Is4():
		a := t.IP.As4()
		b = append(b, a[:]...)
	default:
		return replyErr(Unreachable, 0, "socks4: target %s has no IPv4 address", trunc(t.Host))
	}
	b = append(b, user...)
	b = append(b, 0)
	if useName {
		b = append(b, t.Host...)
		b = append(b, 0)
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("socks4 request: %w", err)
	}
	if err := ReadSOCKS4Reply(br); err != nil {
		return fmt.Errorf("socks4 connect: %w", err)
	}
	return nil
}

// ReadSOCKS4Reply reads the 8-byte SOCKS4 reply.
func ReadSOCKS4Reply(r io.Reader) error {
	var b [8]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return err
	}
	if b[0] != 0 && b[0] != socks4Version { // 0 per the spec; some servers echo 4
		return replyErr(BadReply, int(b[0]), "not a SOCKS4 reply (version %#x)", b[0])
	}
	switch b[1] {
	case socks4Granted:
		return nil
	case socks4Rejected:
		return replyErr(Unreachable, int(b[1]), "proxy rejected or failed the request (%#x)", b[1])
	case socks4NoIdentd, socks4BadIdent:
		return replyErr(Auth, int(b[1]), "proxy wants an identd user id (%#x)", b[1])
	}
	return replyErr(BadReply, int(b[1]), "SOCKS4 reply code %#x", b[1])
}

// trunc shortens s for an error message.
func trunc(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
