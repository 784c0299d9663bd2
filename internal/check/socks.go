package check

// The SOCKS4, SOCKS4a and SOCKS5 handshakes are internal/proxydial's (the one client side of the
// proxy protocols, shared with the rotator); this file runs them against the judge and classes
// their failures.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"

	"github.com/proxyline/proxyline/internal/proxydial"
	"github.com/proxyline/proxyline/proxy"
)

// socks5 runs the SOCKS5 handshake on rw, asking the proxy to connect to the judge. buf is
// scratch space of at least 512 bytes.
func socks5(ctx context.Context, rw io.Writer, br *bufio.Reader, p proxy.Proxy, j *judge, buf []byte) error {
	t := proxydial.Target{IP: j.ip, Host: j.host, Port: j.port}
	return handshakeFailure(ctx, proxydial.SOCKS5(rw, br, p.User, p.Password, t, buf))
}

// socks4 runs the SOCKS4 or SOCKS4a handshake. SOCKS4 needs the judge's IPv4 address (ip, resolved
// by Prepare for a judge given by name); SOCKS4a sends the judge's name when it has one, for the
// proxy to resolve.
func socks4(ctx context.Context, rw io.Writer, br *bufio.Reader, p proxy.Proxy, j *judge, ip netip.Addr, buf []byte) error {
	t := proxydial.Target{IP: ip, Host: j.host, Port: j.port}
	socks4a := p.Scheme == proxy.SOCKS4A
	if socks4a && !j.ip.IsValid() { // the judge is given by name: send the name
		t.IP = netip.Addr{}
	}
	return handshakeFailure(ctx, proxydial.SOCKS4(rw, br, p.User, socks4a, t, buf))
}

// handshakeFailure classes an error of a proxydial handshake: the proxy's refusals by their kind
// (a bad reply, credentials, or its report that it could not reach the judge), I/O errors as
// replyFailure does.
func handshakeFailure(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	var re *proxydial.ReplyError
	if errors.As(err, &re) {
		class := BadResponse
		switch re.Kind {
		case proxydial.Auth:
			class = AuthNeeded
		case proxydial.Unreachable:
			class = Unreachable
		}
		return &classError{class: class, err: err}
	}
	return replyFailure(ctx, "proxy handshake", err)
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
