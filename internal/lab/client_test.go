package lab

// A minimal proxy client for the tests: just enough HTTP, CONNECT, SOCKS4/4a and SOCKS5 to fetch
// the judge through a lab proxy. The tests do not use internal/check on purpose: the checker is
// what the lab exists to test.

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"time"

	"github.com/proxyline/proxyline/internal/judge"
	"github.com/proxyline/proxyline/proxy"
)

// fetch describes one request for the judge through a proxy.
type fetch struct {
	proxy    proxy.Proxy
	scheme   proxy.Scheme   // how to speak to the proxy (for bare candidates, the probed scheme)
	connect  bool           // HTTP proxies: CONNECT then GET instead of an absolute-URI GET
	judgeURL string         // plain or TLS judge
	caPool   *x509.CertPool // for the TLS judge and HTTPS proxies
	token    string
	timeout  time.Duration
	socksDNS bool // SOCKS4a/5: send the judge host as a domain name
}

// errStatus is a non-200 answer from the proxy or the judge.
type errStatus struct{ code int }

func (e errStatus) Error() string { return "status " + strconv.Itoa(e.code) }

// do fetches the judge page through the proxy.
func (f fetch) do(ctx context.Context) (judge.Response, error) {
	if f.timeout == 0 {
		f.timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", f.proxy.Addr())
	if err != nil {
		return judge.Response{}, err
	}
	defer c.Close()
	dl, _ := ctx.Deadline()
	_ = c.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	ju, err := url.Parse(f.judgeURL)
	if err != nil {
		return judge.Response{}, err
	}
	var conn net.Conn = c
	if f.scheme == proxy.HTTPS {
		tc := tls.Client(c, &tls.Config{RootCAs: f.caPool, ServerName: f.proxy.Host})
		if err := tc.HandshakeContext(ctx); err != nil {
			return judge.Response{}, fmt.Errorf("proxy tls: %w", err)
		}
		conn = tc
	}
	br := bufio.NewReader(conn)
	q := "?" + judge.TokenParam + "=" + url.QueryEscape(f.token)
	switch f.scheme {
	case proxy.HTTP, proxy.HTTPS:
		auth := ""
		if f.proxy.User != "" {
			auth = "Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(f.proxy.User+":"+f.proxy.Password)) + "\r\n"
		}
		if !f.connect {
			if ju.Scheme != "http" {
				return judge.Response{}, errors.New("absolute-URI GET needs the http judge")
			}
			fmt.Fprintf(conn, "GET %s://%s/%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: labtest\r\n%s\r\n", ju.Scheme, ju.Host, q, ju.Host, auth)
			return readJudge(br, "GET")
		}
		fmt.Fprintf(conn, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", ju.Host, ju.Host, auth)
		resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
		if err != nil {
			return judge.Response{}, fmt.Errorf("connect: %w", err)
		}
		if resp.StatusCode != http.StatusOK {
			return judge.Response{}, errStatus{resp.StatusCode}
		}
	case proxy.SOCKS4, proxy.SOCKS4A:
		hp, err := netip.ParseAddrPort(ju.Host)
		if err != nil {
			return judge.Response{}, err
		}
		msg := []byte{4, 1, byte(hp.Port() >> 8), byte(hp.Port())}
		if f.socksDNS {
			msg = append(msg, 0, 0, 0, 1)
			msg = append(msg, "user\x00"+hp.Addr().String()+"\x00"...)
		} else {
			ip := hp.Addr().As4()
			msg = append(msg, ip[:]...)
			msg = append(msg, "user\x00"...)
		}
		if _, err := conn.Write(msg); err != nil {
			return judge.Response{}, err
		}
		var rep [8]byte
		if _, err := io.ReadFull(br, rep[:]); err != nil {
			return judge.Response{}, fmt.Errorf("socks4 reply: %w", err)
		}
		if rep[1] != 0x5A {
			return judge.Response{}, fmt.Errorf("socks4 reply %#x", rep[1])
		}
	case proxy.SOCKS5:
		if err := socks5Handshake(conn, br, f.proxy.User, f.proxy.Password, ju.Host, f.socksDNS); err != nil {
			return judge.Response{}, err
		}
	default:
		return judge.Response{}, fmt.Errorf("scheme %q", f.scheme)
	}
	// A tunnel to the judge: speak to it directly (TLS if it is the TLS judge).
	if ju.Scheme == "https" {
		host, _, _ := net.SplitHostPort(ju.Host)
		tc := tls.Client(&bufConn{Conn: conn, r: br}, &tls.Config{RootCAs: f.caPool, ServerName: host})
		if err := tc.HandshakeContext(ctx); err != nil {
			return judge.Response{}, fmt.Errorf("judge tls: %w", err)
		}
		conn, br = tc, bufio.NewReader(tc)
	}
	fmt.Fprintf(conn, "GET /%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: labtest\r\n\r\n", q, ju.Host)
	return readJudge(br, "GET")
}

// socks5Handshake negotiates (with user/password when user is set) and connects to hostport.
func socks5Handshake(c net.Conn, br *bufio.Reader, user, pass, hostport string, dns bool) error {
	method := byte(0)
	if user != "" {
		method = 2
	}
	if _, err := c.Write([]byte{5, 1, method}); err != nil {
		return err
	}
	var sel [2]byte
	if _, err := io.ReadFull(br, sel[:]); err != nil {
		return fmt.Errorf("socks5 method: %w", err)
	}
	if sel[1] != method {
		return fmt.Errorf("socks5 method %#x", sel[1])
	}
	if method == 2 {
		msg := append([]byte{1, byte(len(user))}, user...)
		msg = append(append(msg, byte(len(pass))), pass...)
		if _, err := c.Write(msg); err != nil {
			return err
		}
		var st [2]byte
		if _, err := io.ReadFull(br, st[:]); err != nil {
			return fmt.Errorf("socks5 auth: %w", err)
		}
		if st[1] != 0 {
			return fmt.Errorf("socks5 auth status %#x", st[1])
		}
	}
	hp, err := netip.ParseAddrPort(hostport)
	if err != nil {
		return err
	}
	msg := []byte{5, 1, 0}
	if dns {
		name := hp.Addr().String()
		msg = append(append(msg, 3, byte(len(name))), name...)
	} else {
		ip := hp.Addr().As4()
		msg = append(append(msg, 1), ip[:]...)
	}
	msg = append(msg, byte(hp.Port()>>8), byte(hp.Port()))
	if _, err := c.Write(msg); err != nil {
		return err
	}
	var rep [10]byte
	if _, err := io.ReadFull(br, rep[:]); err != nil {
		return fmt.Errorf("socks5 reply: %w", err)
	}
	if rep[1] != 0 {
		return fmt.Errorf("socks5 reply %#x", rep[1])
	}
	return nil
}

func readJudge(br *bufio.Reader, method string) (judge.Response, error) {
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		return judge.Response{}, fmt.Errorf("judge response: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return judge.Response{}, errStatus{resp.StatusCode}
	}
	var page judge.Response
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		return judge.Response{}, fmt.Errorf("judge page: %w", err)
	}
	return page, nil
}

// bufConn reads through a bufio.Reader that may already hold bytes of the connection.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufConn) Read(p []byte) (int, error) { return b.r.Read(p) }
