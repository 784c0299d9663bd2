package check

import (
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
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
	// PostQuantum offers the judge (and https proxies) Go's default key exchanges, led by the
	// hybrid post-quantum X25519MLKEM768, and so TLS 1.3. Default false: X25519, then P-256 and
	// P-384, and TLS 1.2 session resumption when the judge allows it, which together cost less
	// than half the CPU per check through an https judge; a liveness check has no secret to keep
	// from a future quantum computer (see judgeTLS).
	PostQuantum bool
	// RealIP is our own address as the judge sees it without a proxy. Default "": Prepare learns
	// it with a direct request to the judge.
	RealIP string
	// Log receives diagnostics. Default: discard.
	Log *slog.Logger
}

// Validate reports the first invalid field, by name.
func (o Options) Validate() error {
	if err := ValidateJudgeURL(o.Judge); err != nil {
		return err
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
