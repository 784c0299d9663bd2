package check

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"net/url"
	"time"
)

// DefaultTimeout is the time one check may take when Options.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// Options configure a Checker. The zero value of every field but Judge means its default.
type Options struct {
	// Judge is the URL fetched through each proxy, http or https. Required. Our own judge
	// (proxyline judge, or the lab's) echoes a per-check token and what it saw as JSON; a
	// third-party judge needs JudgeKeyword.
	Judge string
	// JudgeStatus is the HTTP status the judge must answer with. Default 200.
	JudgeStatus int
	// JudgeKeyword, when set, selects third-party judge mode: the body must contain it, and
	// anonymity is judged by searching the body for our address and proxy header names. When
	// empty (the default) the judge must be proxyline's and echo the check's token as JSON.
	JudgeKeyword string
	// Timeout bounds one whole check: connect, proxy handshake, TLS and judge response, and for a
	// bare host:port every protocol probed. Default DefaultTimeout (10 s).
	Timeout time.Duration
	// RootCAs verifies the judge's certificate (and an https:// proxy's). Default nil: the system
	// roots. TLS is always verified; there is no switch to turn it off.
	RootCAs *x509.CertPool
	// RealIP is our own address as the judge sees it without a proxy. Default "": Prepare learns
	// it with a direct request to the judge.
	RealIP string
	// Log receives diagnostics. Default: discard.
	Log *slog.Logger
}

// Validate reports the first invalid field, by name.
func (o Options) Validate() error {
	if o.Judge == "" {
		return errors.New("judge: a judge URL is required")
	}
	u, err := url.Parse(o.Judge)
	if err != nil {
		return fmt.Errorf("judge %q: %w", o.Judge, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("judge %q: scheme must be http or https", o.Judge)
	}
	if u.Hostname() == "" {
		return fmt.Errorf("judge %q: no host", o.Judge)
	}
	if u.User != nil {
		return fmt.Errorf("judge %q: credentials in the judge URL are not supported", o.Judge)
	}
	if u.Fragment != "" {
		return fmt.Errorf("judge %q: a fragment is not allowed", o.Judge)
	}
	if o.JudgeStatus != 0 && (o.JudgeStatus < 100 || o.JudgeStatus > 599) {
		return fmt.Errorf("judge status %d: not an HTTP status", o.JudgeStatus)
	}
	if o.Timeout < 0 {
		return fmt.Errorf("timeout %v: must not be negative", o.Timeout)
	}
	if o.RealIP != "" {
		if _, err := netip.ParseAddr(o.RealIP); err != nil {
			return fmt.Errorf("real IP %q: %w", o.RealIP, err)
		}
	}
	return nil
}

// withDefaults returns o with every zero field set to its default.
func (o Options) withDefaults() Options {
	if o.JudgeStatus == 0 {
		o.JudgeStatus = 200
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return o
}
