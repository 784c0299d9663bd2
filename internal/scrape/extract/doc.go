// Package extract finds proxy candidates in what proxy list sources serve: any text (host:port,
// scheme://[user:pass@]host:port, [IPv6]:port, CIDR ranges with a port), HTML tables, JSON
// documents (with an optional field path) and CSV. Every candidate is validated by the proxy
// package (proxy.Parse, proxy.FromFields): this package finds where candidates are, proxy
// decides what they are.
//
// The text scanner is the hot path and is written by hand over bytes: it jumps from one ':' to
// the next with bytes.IndexByte and looks around each one for a port after it and a host (and
// perhaps credentials and a scheme) before it, so text with no candidate costs little more than a
// memchr. A regular expression over the whole body would be several times slower and would still
// need the validation afterwards.
//
// Host names: free text is full of host:port that are not proxies (URLs in prose, "localhost:3000"
// in a README), so by default only IP addresses are candidates, as in monosans/proxy-scraper-
// checker. Options.Hostnames accepts names too (for sources known to list named proxies).
package extract
