// Package serve holds the rule every proxyline server follows when it listens: loopback by
// default; any other address (":8081", "0.0.0.0:8081", a LAN address, a host name) only with
// credentials (--auth user:pass or --auth-file FILE, HTTP basic authentication) or with an explicit
// --insecure-no-auth, which logs a warning at start. It also turns away what a browser can be
// tricked into sending to a server without credentials: requests for a host name that is not a
// loopback one (DNS rebinding) and cross-origin requests that change something.
//
// A server registers the flags with Options.Register, validates them with Options.Validate, then
// builds a Gate, listens with Gate.Listen and wraps its handler with Gate.Wrap. ui uses it; every
// server added later (the rotator, proxyline run) must.
package serve

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
)

// ErrRefused is wrapped by every refusal of the listening rule (as opposed to an I/O error).
var ErrRefused = errors.New("refused")

// maxAuthFile bounds what is read of an --auth-file.
const maxAuthFile = 4096

// Options are the listening flags of a server. The zero value listens nowhere: Register sets the
// default address.
type Options struct {
	Listen   string // --listen: host:port
	Auth     string // --auth: user:pass
	AuthFile string // --auth-file: a file holding user:pass, not accessible to other users
	Insecure bool   // --insecure-no-auth: listen beyond loopback without credentials
}

// Register defines --listen (default def, which must be a loopback address), --auth, --auth-file
// and --insecure-no-auth on fs.
func (o *Options) Register(fs *flag.FlagSet, def string) {
	fs.StringVar(&o.Listen, "listen", def, "`address` to serve on; anything but loopback needs --auth, --auth-file or --insecure-no-auth")
	fs.StringVar(&o.Auth, "auth", "", "`user:pass` required from clients (HTTP basic auth); visible to local users in ps: prefer --auth-file or the environment variable")
	fs.StringVar(&o.AuthFile, "auth-file", "", "`file` holding user:pass on one line, readable by no other user (mode 0600 or 0640)")
	fs.BoolVar(&o.Insecure, "insecure-no-auth", false, "serve beyond loopback without credentials (anyone who can reach the address can use it)")
}

// Validate checks the flags without reading the auth file: the address's form, the credentials'
// form, and the rule. A refusal wraps ErrRefused.
func (o Options) Validate() error {
	loop, err := Loopback(o.Listen)
	if err != nil {
		return err
	}
	if o.Auth != "" && o.AuthFile != "" {
		return fmt.Errorf("--auth and --auth-file: give one of them: %w", ErrRefused)
	}
	if o.Auth != "" {
		if _, err := parseCredentials(o.Auth); err != nil {
			return fmt.Errorf("--auth: %w", err)
		}
	}
	hasAuth := o.Auth != "" || o.AuthFile != ""
	if o.Insecure && hasAuth {
		return fmt.Errorf("--insecure-no-auth with --auth or --auth-file: say which one you mean: %w", ErrRefused)
	}
	if !loop && !hasAuth && !o.Insecure {
		return fmt.Errorf("--listen %s is not a loopback address: anyone who can reach it could use this server; "+
			"give credentials with --auth-file FILE (or --auth user:pass), or accept the exposure with --insecure-no-auth: %w",
			o.Listen, ErrRefused)
	}
	return nil
}

// Loopback reports whether listening on addr (host:port) binds loopback only: the host is an IP
// address in 127.0.0.0/8 or ::1 (an IPv4-mapped one included) or the name "localhost". An empty
// host (":8081"), an unspecified address (0.0.0.0, ::), any other address and any other host name
// (it might resolve anywhere) are not. A malformed addr is an error.
func Loopback(addr string) (bool, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false, fmt.Errorf("--listen %q: %w", addr, err)
	}
	if port == "" {
		return false, fmt.Errorf("--listen %q: no port", addr)
	}
	if strings.EqualFold(host, "localhost") {
		return true, nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false, nil // a host name, or empty: every interface
	}
	return ip.Zone() == "" && ip.Unmap().IsLoopback(), nil
}

// credentials are kept as SHA-256 digests, so that comparing them takes the same time whatever
// their lengths.
type credentials struct {
	user, pass [sha256.Size]byte
}

func parseCredentials(s string) (*credentials, error) {
	user, pass, ok := strings.Cut(s, ":")
	if !ok || user == "" || pass == "" {
		return nil, fmt.Errorf("want user:pass, both non-empty: %w", ErrRefused)
	}
	return &credentials{user: sha256.Sum256([]byte(user)), pass: sha256.Sum256([]byte(pass))}, nil
}

// readAuthFile reads user:pass from path, refusing a file other users may read or write.
func readAuthFile(path string) (*credentials, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--auth-file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("--auth-file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("--auth-file %s: not a regular file: %w", path, ErrRefused)
	}
	if perm := fi.Mode().Perm(); perm&0o007 != 0 {
		return nil, fmt.Errorf("--auth-file %s: mode %04o lets every user of the machine read it; chmod o-rwx %s (0600): %w",
			path, perm, path, ErrRefused)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxAuthFile+1))
	if err != nil {
		return nil, fmt.Errorf("--auth-file: %w", err)
	}
	if len(b) > maxAuthFile {
		return nil, fmt.Errorf("--auth-file %s: longer than %d bytes: %w", path, maxAuthFile, ErrRefused)
	}
	line := strings.TrimRight(string(b), "\r\n")
	if strings.ContainsAny(line, "\r\n") {
		return nil, fmt.Errorf("--auth-file %s: want one line user:pass: %w", path, ErrRefused)
	}
	c, err := parseCredentials(line)
	if err != nil {
		return nil, fmt.Errorf("--auth-file %s: %w", path, err)
	}
	return c, nil
}

// Gate admits a server's clients by the rule; build it with Options.Gate.
type Gate struct {
	listen   string
	creds    *credentials // nil: no authentication
	insecure bool
	log      *slog.Logger
	exposed  bool // set by Listen: the bound address is not loopback
}

// Gate validates o, reads the credentials and returns the Gate. A refusal wraps ErrRefused; a
// file that cannot be read wraps the fs error (fs.ErrNotExist, fs.ErrPermission).
func (o Options) Gate(log *slog.Logger) (*Gate, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	g := &Gate{listen: o.Listen, insecure: o.Insecure, log: log}
	var err error
	switch {
	case o.AuthFile != "":
		g.creds, err = readAuthFile(o.AuthFile)
	case o.Auth != "":
		g.creds, err = parseCredentials(o.Auth)
	}
	if err != nil {
		return nil, err
	}
	return g, nil
}

// Authenticated reports whether clients must give credentials.
func (g *Gate) Authenticated() bool { return g.creds != nil }

// Listen binds the address and checks the address actually bound (a name may resolve to several):
// beyond loopback without credentials it is refused unless --insecure-no-auth was given, which is
// logged as a warning. Call it once, before serving the handler Wrap returns.
func (g *Gate) Listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", g.listen)
	if err != nil {
		return nil, err
	}
	if err := g.admit(ln.Addr().String()); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// admit applies the rule to the address a listener bound.
func (g *Gate) admit(bound string) error {
	loop, _ := Loopback(bound)
	g.exposed = !loop
	if loop || g.creds != nil {
		return nil
	}
	if !g.insecure {
		return fmt.Errorf("--listen %s bound %s, not a loopback address, and no credentials were given: %w", g.listen, bound, ErrRefused)
	}
	g.log.Warn("serving beyond loopback WITHOUT authentication (--insecure-no-auth): anyone who can reach this address can use it",
		"listen", bound)
	return nil
}

// Wrap returns h behind the gate: HTTP basic authentication when credentials were given (401 with
// a challenge otherwise); without credentials on loopback, only requests addressed to a loopback
// host name or address (a browser led there by DNS rebinding names another host: 403). Always: a request that may change something (not GET,
// HEAD or OPTIONS) from a page of another origin gets 403.
func (g *Gate) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.creds != nil && !g.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Basic realm="proxyline", charset="UTF-8"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		if g.creds == nil && !g.exposed && !loopbackHost(r.Host) {
			http.Error(w, "forbidden: this server answers only to a loopback host name", http.StatusForbidden)
			return
		}
		if crossOriginWrite(r) {
			http.Error(w, "forbidden: cross-origin request", http.StatusForbidden)
			return
		}
		if g.creds != nil {
			r = markAuthenticated(r) // the check above let it through
		}
		h.ServeHTTP(w, r)
	})
}

func (g *Gate) authorized(r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	return ok && g.Authorize(user, pass)
}

// Authorize reports whether user and pass are the credentials the gate was given, comparing in
// constant time; without credentials it reports false. For servers that take credentials another
// way than HTTP basic authentication (a forward proxy's Proxy-Authorization, SOCKS5).
func (g *Gate) Authorize(user, pass string) bool {
	if g.creds == nil {
		return false
	}
	u, p := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(pass))
	okUser := subtle.ConstantTimeCompare(u[:], g.creds.user[:])
	okPass := subtle.ConstantTimeCompare(p[:], g.creds.pass[:])
	return okUser&okPass == 1
}

// loopbackHost reports whether a Host header names loopback.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// crossOriginWrite reports a state-changing request sent by a page of another origin, as browsers
// mark it (Sec-Fetch-Site, else Origin).
func crossOriginWrite(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "same-origin", "none":
		return false
	case "cross-site", "same-site":
		return true
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false // not a browser, or a same-origin request of an old one
	}
	u, err := url.Parse(origin)
	return err != nil || !strings.EqualFold(u.Host, r.Host)
}
