// Package proxydial is the one client side of the proxy protocols proxyline speaks: it opens a
// connection to a target through an HTTP proxy (CONNECT), an HTTPS proxy (TLS to the proxy, then
// CONNECT), or a SOCKS4, SOCKS4a or SOCKS5 proxy (RFC 1928, user/password RFC 1929). The checker
// (internal/check) runs the handshakes on its own connections, buffers and deadlines; the rotator
// (internal/rotate) uses Dial.
//
// The handshakes are written by hand: golang.org/x/net/proxy speaks SOCKS5 only, and like the
// other SOCKS libraries it folds the server's reply codes into error strings and dials for itself.
// Callers need the reply codes to tell whose fault a failure is (the proxy's: bad reply, wrong
// credentials; or the target's: the proxy says it could not reach it), must dial with their own
// dialer and deadlines, and the checker reuses one buffered reader per check. The reply parsers
// are fuzzed.
package proxydial
