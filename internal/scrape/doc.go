// Package scrape is proxyline's scraper: it fetches proxy list sources (URLs and local files,
// from a TOML configuration or the command line) with limits, extracts candidates from them in
// any format (package extract), removes duplicates across sources while remembering every
// source that named each candidate, and hands the candidates on as they are found: to an output
// (stdout, a file, a PSC-style directory), to the checker (streamed, so the first live proxy
// comes out before the last source is fetched), or to the queue as check jobs. It keeps
// per-source statistics (bytes, candidates, new, duplicates, errors, time, and live proxies once
// checked) and adds country, city and ASN from offline MaxMind databases (package geo).
//
// Run is the whole command; the Scraper and the check stream are services with the shape of
// docs/lifecycle.md (Start returns once started; Stop drains while its context lives, cuts what is
// left when it ends, waits, and returns the context's cause when it cut something).
//
// Shutdown order on the first signal (Run's context canceled): the Scraper starts no new
// source and the checker no new check; fetches and checks in flight get until the grace period
// ends, then are canceled; everything found (or checked) so far is written, each output file
// appearing complete (atomicFile); Run returns nil. On Force (the second signal) Run returns at
// once without writing, and no partial output file is left.
package scrape
