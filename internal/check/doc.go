// Package check decides whether a proxy works: it speaks HTTP (absolute-URI and CONNECT), SOCKS4,
// SOCKS4a and SOCKS5 to it, fetches a judge page through it with a per-request token so a proxy
// that forges or alters the page is caught, and classifies the outcome, the exit address and the
// anonymity level. Every check has its own dialer and connection; nothing mutable is shared between
// checks but the https judge's TLS session (which carries no result; see judgeTLS), so one
// proxy's result can never be reported for another.
package check
