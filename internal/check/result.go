package check

import (
	"time"

	"github.com/proxyline/proxyline/proxy"
)

// Class is the outcome of one check: Alive, or the class of error that made it fail.
type Class string

// The outcome classes. Every failed check has exactly one.
const (
	Alive       Class = "alive"
	Refused     Class = "refused"       // the proxy's port refused the connection
	Timeout     Class = "timeout"       // no answer within the timeout (connect or read)
	BadResponse Class = "bad_response"  // the proxy answered with something that is not the protocol
	AuthNeeded  Class = "auth_required" // the proxy wants credentials we lack, or rejected ours
	TLSError    Class = "tls_error"     // the TLS handshake with the judge failed through the proxy
	Mismatch    Class = "mismatch"      // the judge page is not the one we asked for: a liar
	Unreachable Class = "unreachable"   // the proxy could not reach the judge (it said so)
	Canceled    Class = "canceled"      // the check was canceled before it finished
	Dead        Class = "dead"          // an external checker (--exec) did not report it alive; it gives no reason
)

// Anonymity is what the judge learned about us through the proxy.
type Anonymity string

// Anonymity levels, judged from the headers and address the judge saw versus our real address.
const (
	AnonymityUnknown Anonymity = ""
	Transparent      Anonymity = "transparent" // our real address reached the judge
	Anonymous        Anonymity = "anonymous"   // the proxy announced itself (Via, X-Forwarded-For, ...) but hid us
	Elite            Anonymity = "elite"       // the judge saw neither us nor a proxy
)

// Result is the outcome of checking one proxy. It is a plain value: each check builds its own.
type Result struct {
	Proxy     proxy.Proxy   // the proxy as checked; Scheme is the probed protocol when it was Unknown
	Class     Class         // Alive or the error class
	Err       string        // the error text when Class != Alive
	ExitIP    string        // the address the judge saw the request come from
	Anonymity Anonymity     // set when Alive
	Connect   time.Duration // time to establish the connection to the proxy (TCP + proxy handshake)
	Total     time.Duration // time for the whole check
	CheckedAt time.Time
}

// OK reports whether the proxy is alive.
func (r Result) OK() bool { return r.Class == Alive }
