// Package rotate is proxyline's rotating proxy server (`proxyline serve`): a scraper points at one
// local address and each request (or each rotation window, or each sticky session) goes out
// through another working upstream proxy.
//
// Inbound it speaks HTTP forward proxy (absolute-URI requests), CONNECT (tunnels passed through
// untouched: no TLS interception) and SOCKS5, on one listener that tells them apart by the first
// byte (0x05 is SOCKS5) and optionally on a separate SOCKS5 listener. It binds loopback by default;
// anywhere else needs credentials or --insecure-no-auth (internal/serve's rule), and credentials
// are asked of HTTP, CONNECT and SOCKS5 clients alike (Proxy-Authorization Basic, RFC 1929),
// compared in constant time.
//
// Upstreams are HTTP, HTTPS, SOCKS4/4a/5 proxies (dialled with internal/proxydial), from the pool's
// live proxies (refreshed while serving) or from a watched file (the last good set is kept when
// the file is briefly empty or broken). Policies: round-robin, random, fastest (moving average of
// latency); sticky sessions by a name in the proxy user name or by client address; rotation every
// N requests, exact under concurrency (an atomic counter divided by N).
//
// Failures: a request is retried on another upstream after a dial or handshake error, and for an
// idempotent method whose body was not read, before any response byte; an upstream that fails is
// benched for a cool-down that doubles while it keeps failing, and the failure is reported to the
// pool. No upstream: 503 (SOCKS5: general failure) with the reason, never an exit.
//
// Hygiene follows net/http/httputil.ReverseProxy (which it uses for plain HTTP): the request is
// cloned with the client's context (a client that leaves cancels the upstream request), hop-by-hop
// headers are stripped, nothing is added (no X-Forwarded-For, no Via, no User-Agent), bodies are
// streamed both ways, tunnels are two copiers with half-close. Stop drains requests and tunnels
// within its context's deadline, then closes what is left. See docs/rotate.md.
package rotate
