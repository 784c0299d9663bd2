package check

// SOCKS4, SOCKS4a and SOCKS5 (RFC 1928, user/password RFC 1929) clients, written by hand:
// golang.org/x/net/proxy speaks SOCKS5 only, and like the other SOCKS libraries it folds the
// server's reply codes into error strings and dials for itself. The checker needs the reply
// codes to class a failure (auth_required vs unreachable vs bad_response), must dial with its own
// per-check dialer and deadlines, and reuses one buffered reader per check. The client side of
// the protocol is small; the reply parsers are fuzzed.

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"

	"github.com/proxyline/proxyline/proxy"
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

// socks5 runs the SOCKS5 handshake on rw, asking the proxy to connect to the judge. buf is
// scratch space of at least 512 bytes.
func socks5(ctx context.Context, rw io.Writer, br *bufio.Reader, p proxy.Proxy, j *judge, buf []byte) error {
	creds := p.User != "" || p.Password != ""
	b := buf[:0]
	if creds {
		if len(p.User) > 255 || len(p.Password) > 255 {
			return fail(AuthNeeded, "socks5: user or password longer than 255 bytes")
		}
		b = append(b, socks5Version, 2, socks5NoAuth, socks5UserPass)
	} else {
		b = append(b, socks5Version, 1, socks5NoAuth)
	}
	if _, err := rw.Write(b); err != nil {
		return ioFailure(ctx, "socks5 greeting", err)
	}
	method, err := readSOCKS5Method(br)
	if err != nil {
		return replyFailure(ctx, "socks5 greeting", err)
	}
	switch method {
	case socks5NoAuth:
	case socks5UserPass:
		if !creds {
			return fail(AuthNeeded, "socks5: proxy wants a user and password")
		}
		b = append(buf[:0], socks5AuthVersion, byte(len(p.User)))
		b = append(b, p.User...)
		b = append(b, byte(len(p.Password)))
		b = append(b, p.Password...)
		if _, err := rw.Write(b); err != nil {
			return ioFailure(ctx, "socks5 authentication", err)
		}
		if err := readSOCKS5AuthReply(br); err != nil {
			return replyFailure(ctx, "socks5 authentication", err)
		}
	case socks5NoAcceptable:
		if creds {
			return fail(AuthNeeded, "socks5: proxy accepts neither no-auth nor user/password")
		}
		return fail(AuthNeeded, "socks5: proxy accepts no unauthenticated clients")
	default:
		return fail(BadResponse, "socks5: proxy chose method %#x we did not offer", method)
	}
	b = append(buf[:0], socks5Version, socks5Connect, 0)
	switch {
	case j.ip.Is4():
		a := j.ip.As4()
		b = append(b, socks5ATYPIPv4)
		b = append(b, a[:]...)
	case j.ip.Is6():
		a := j.ip.As16()
		b = append(b, socks5ATYPIPv6)
		b = append(b, a[:]...)
	default:
		if len(j.host) > 255 {
			return fail(Unreachable, "socks5: judge host name longer than 255 bytes")
		}
		b = append(b, socks5ATYPDomain, byte(len(j.host)))
		b = append(b, j.host...)
	}
	b = binary.BigEndian.AppendUint16(b, j.port)
	if _, err := rw.Write(b); err != nil {
		return ioFailure(ctx, "socks5 connect request", err)
	}
	if err := readSOCKS5Reply(br); err != nil {
		return replyFailure(ctx, "socks5 connect", err)
	}
	return nil
}

// replyFailure classes an error reading a proxy's reply: an already classed error (a reply
// code) keeps its class, a closed connection is a bad response, others as I/O errors.
func replyFailure(ctx context.Context, what string, err error) error {
	if _, ok := err.(*classError); ok {
		return &classError{class: classOf(err), err: fmt.Errorf("%s: %w", what, err)}
	}
	if class := ioClass(ctx, err); class == Timeout || class == Canceled {
		return ioFailure(ctx, what, err)
	}
	if isClosed(err) {
		return fail(BadResponse, "%s: proxy closed the connection without a valid reply: %w", what, err)
	}
	return ioFailure(ctx, what, err)
}

// readSOCKS5Method reads the server's method selection.
func readSOCKS5Method(r io.Reader) (byte, error) {
	var b [2]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return 0, err
	}
	if b[0] != socks5Version {
		return 0, fail(BadResponse, "not a SOCKS5 reply (version %#x)", b[0])
	}
	return b[1], nil
}

// readSOCKS5AuthReply reads the RFC 1929 status; non-zero is a rejection of our credentials.
func readSOCKS5AuthReply(r io.Reader) error {
	var b [2]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return err
	}
	if b[0] != socks5AuthVersion && b[0] != socks5Version { // some servers answer with 5
		return fail(BadResponse, "not a SOCKS5 authentication reply (version %#x)", b[0])
	}
	if b[1] != 0 {
		return fail(AuthNeeded, "credentials rejected (status %#x)", b[1])
	}
	return nil
}

// readSOCKS5Reply reads the reply to CONNECT, including the bound address, and classes a
// refusal: the proxy's own failures to reach the judge are Unreachable.
func readSOCKS5Reply(r io.Reader) error {
	var b [4]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return err
	}
	if b[0] != socks5Version {
		return fail(BadResponse, "not a SOCKS5 reply (version %#x)", b[0])
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
		return fail(BadResponse, "SOCKS5 reply with address type %#x", b[3])
	}
	var skip [258]byte
	if _, err := io.ReadFull(r, skip[:n]); err != nil {
		return err
	}
	switch rep := b[1]; rep {
	case 0x00:
		return nil
	case 0x01, 0x02, 0x03, 0x04, 0x05, 0x06:
		return fail(Unreachable, "proxy failed to connect to the judge: %s", socks5ReplyText(rep))
	default:
		return fail(BadResponse, "proxy refused the request: %s", socks5ReplyText(rep))
	}
}

func socks5ReplyText(rep byte) string {
	switch rep {
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

// socks4 runs the SOCKS4 or SOCKS4a handshake. SOCKS4 needs the judge's IPv4 address (ip, resolved
// by Prepare for a judge given by name); SOCKS4a sends the judge's name when it has one, for the
// proxy to resolve.
func socks4(ctx context.Context, rw io.Writer, br *bufio.Reader, p proxy.Proxy, j *judge, ip netip.Addr, buf []byte) error {
	if len(p.User) > 255 {
		return fail(AuthNeeded, "socks4: user id longer than 255 bytes")
	}
	b := append(buf[:0], socks4Version, socks4Connect)
	b = binary.BigEndian.AppendUint16(b, j.port)
	useName := p.Scheme == proxy.SOCKS4A && !j.ip.IsValid() // the judge is given by name
	switch {
	case useName:
		if len(j.host) > 255 {
			return fail(Unreachable, "socks4a: judge host name longer than 255 bytes")
		}
		b = append(b, 0, 0, 0, 1)
	case ip.Is4():
		a := ip.As4()
		b = append(b, a[:]...)
	default:
		return fail(Unreachable, "socks4: judge %s has no IPv4 address", j.host)
	}
	b = append(b, p.User...)
	b = append(b, 0)
	if useName {
		b = append(b, j.host...)
		b = append(b, 0)
	}
	if _, err := rw.Write(b); err != nil {
		return ioFailure(ctx, "socks4 request", err)
	}
	if err := readSOCKS4Reply(br); err != nil {
		return replyFailure(ctx, "socks4 connect", err)
	}
	return nil
}

// readSOCKS4Reply reads the 8-byte SOCKS4 reply.
func readSOCKS4Reply(r io.Reader) error {
	var b [8]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return err
	}
	if b[0] != 0 && b[0] != socks4Version { // 0 per the spec; some servers echo 4
		return fail(BadResponse, "not a SOCKS4 reply (version %#x)", b[0])
	}
	switch b[1] {
	case socks4Granted:
		return nil
	case socks4Rejected:
		return fail(Unreachable, "proxy rejected or failed the request (%#x)", b[1])
	case socks4NoIdentd, socks4BadIdent:
		return fail(AuthNeeded, "proxy wants an identd user id (%#x)", b[1])
	}
	return fail(BadResponse, "SOCKS4 reply code %#x", b[1])
}
