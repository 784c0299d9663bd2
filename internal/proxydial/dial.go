package proxydial

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/proxyline/proxyline/proxy"
)

// Dial connects to addr (host:port) through p and returns the connection to the target, as a
// net.Dialer would return a direct one. network must be "tcp", "tcp4" or "tcp6" (it only says what
// the caller wants; the proxy chooses how it reaches the target). ctx bounds the whole dial: the
// TCP connection to the proxy, TLS with an https:// proxy, and the proxy's handshake; once Dial
// returns, ctx no longer affects the connection. tlsConfig configures TLS with https:// proxies
// (nil: the system roots; ServerName defaults to the proxy's host); TLS is always verified.
//
// SOCKS4 cannot carry a host name: for a SOCKS4 proxy a name in addr is resolved here (IPv4). For
// SOCKS4a and SOCKS5 the proxy resolves it; HTTP proxies get it in the CONNECT request.
//
// Every error is an *Error saying which phase failed; errors.As finds a *ReplyError in it when
// the proxy answered with a refusal, and TargetFault tells the target's fault from the proxy's.
func Dial(ctx context.Context, p proxy.Proxy, network, addr string, tlsConfig *tls.Config) (net.Conn, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, &Error{Phase: PhaseConnect, Proxy: p.Addr(), Err: fmt.Errorf("network %q: want tcp", network)}
	}
	t, err := ParseTarget(addr)
	if err != nil {
		return nil, &Error{Phase: PhaseHandshake, Proxy: p.Addr(), Err: err}
	}
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", p.Addr())
	if err != nil {
		return nil, &Error{Phase: PhaseConnect, Proxy: p.Addr(), Err: err}
	}
	c, err := handshake(ctx, raw, p, t, tlsConfig)
	if err != nil {
		_ = raw.Close()
		return nil, err
	}
	return c, nil
}

// handshake runs TLS (for https://) and the proxy protocol on raw. Cancellation of ctx interrupts
// it by setting a deadline in the past; ctx's own deadline bounds it.
func handshake(ctx context.Context, raw net.Conn, p proxy.Proxy, t Target, tlsConfig *tls.Config) (net.Conn, error) {
	if dl, ok := ctx.Deadline(); ok {
		if err := raw.SetDeadline(dl); err != nil {
			return nil, &Error{Phase: PhaseConnect, Proxy: p.Addr(), Err: err}
		}
	}
	stop := context.AfterFunc(ctx, func() { _ = raw.SetDeadline(time.Unix(1, 0)) })
	c, err := speak(ctx, raw, p, t, tlsConfig)
	if !stop() { // ctx ended: whatever the handshake did, the deadline is now in the past
		if err == nil {
			err = &Error{Phase: PhaseHandshake, Proxy: p.Addr(), Err: ctx.Err()}
		}
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	if err := raw.SetDeadline(time.Time{}); err != nil {
		return nil, &Error{Phase: PhaseHandshake, Proxy: p.Addr(), Err: err}
	}
	return c, nil
}

func speak(ctx context.Context, raw net.Conn, p proxy.Proxy, t Target, tlsConfig *tls.Config) (net.Conn, error) {
	var c net.Conn = raw
	if p.Scheme == proxy.HTTPS {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if tlsConfig != nil {
			cfg = tlsConfig.Clone()
		}
		if cfg.ServerName == "" {
			cfg.ServerName = p.Host
		}
		tc := tls.Client(raw, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, &Error{Phase: PhaseTLS, Proxy: p.Addr(), Err: err}
		}
		c = tc
	}
	br := bufio.NewReaderSize(c, 512)
	buf := make([]byte, 0, 512)
	var err error
	switch p.Scheme {
	case proxy.HTTP, proxy.HTTPS:
		err = Connect(c, br, t.String(), BasicAuth(p.User, p.Password), buf)
	case proxy.SOCKS5:
		err = SOCKS5(c, br, p.User, p.Password, t, buf)
	case proxy.SOCKS4, proxy.SOCKS4A:
		if p.Scheme == proxy.SOCKS4 && !t.IP.IsValid() {
			if t, err = resolve4(ctx, t); err != nil {
				break
			}
		}
		err = SOCKS4(c, br, p.User, p.Scheme == proxy.SOCKS4A, t, buf)
	default:
		err = fmt.Errorf("scheme %q: want http, https, socks4, socks4a or socks5", p.Scheme)
	}
	if err != nil {
		return nil, &Error{Phase: PhaseHandshake, Proxy: p.Addr(), Err: err}
	}
	if br.Buffered() > 0 { // the target spoke first, right after the proxy's answer
		return &bufferedConn{Conn: c, r: br}, nil
	}
	return c, nil
}

// resolve4 looks up an IPv4 address for t's host, for SOCKS4.
func resolve4(ctx context.Context, t Target) (Target, error) {
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip4", t.Host)
	if err != nil {
		return t, fmt.Errorf("socks4: resolve %s: %w", trunc(t.Host), err)
	}
	if len(ips) == 0 {
		return t, replyErr(Unreachable, 0, "socks4: target %s has no IPv4 address", trunc(t.Host))
	}
	t.IP = ips[0].Unmap()
	return t, nil
}

// bufferedConn is a connection whose first bytes were read into r during the handshake.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// CloseWrite half-closes the connection when the underlying one can.
func (c *bufferedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.New("half-close not supported")
}
