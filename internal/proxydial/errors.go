package proxydial

import (
	"errors"
	"fmt"
)

// Kind says what a proxy's refusal means.
type Kind int

// Kinds of ReplyError.
const (
	// BadReply: the proxy does not speak the protocol, or broke it (a wrong version byte, an
	// address type that does not exist, a method we did not offer, a reply code outside the
	// protocol). The proxy's fault.
	BadReply Kind = iota
	// Auth: the proxy wants credentials we do not have, or rejected ours. The proxy's (or its
	// configuration's) fault.
	Auth
	// Unreachable: the proxy answered in its protocol that it could not (or would not) reach the
	// target: SOCKS5 codes 0x01 to 0x06, SOCKS4 0x5B, an HTTP status other than 2xx and 407 to
	// CONNECT. Usually the target's fault, not the proxy's.
	Unreachable
)

func (k Kind) String() string {
	switch k {
	case Auth:
		return "auth"
	case Unreachable:
		return "unreachable"
	}
	return "bad_reply"
}

// ReplyError is a handshake the proxy answered, in a way that is not success.
type ReplyError struct {
	Kind Kind
	Code int // the protocol's reply code (SOCKS reply byte, HTTP status); 0 when none applies
	msg  string
}

func (e *ReplyError) Error() string { return e.msg }

func replyErr(kind Kind, code int, format string, args ...any) error {
	return &ReplyError{Kind: kind, Code: code, msg: fmt.Sprintf(format, args...)}
}

// Phase is the step of Dial that failed.
type Phase string

// Phases of Dial.
const (
	PhaseConnect   Phase = "connect"   // the TCP connection to the proxy
	PhaseTLS       Phase = "tls"       // the TLS handshake with an https:// proxy
	PhaseHandshake Phase = "handshake" // the proxy protocol's handshake (CONNECT, SOCKS)
)

// Error is a failed Dial: which step failed, through which proxy (host:port, never credentials)
// and why. errors.As finds a *ReplyError in Err when the proxy answered.
type Error struct {
	Phase Phase
	Proxy string // host:port of the proxy
	Err   error
}

func (e *Error) Error() string {
	return fmt.Sprintf("proxy %s: %s: %v", e.Proxy, e.Phase, e.Err)
}
func (e *Error) Unwrap() error { return e.Err }

// TargetFault reports whether err says the proxy worked but could not reach the target (a
// ReplyError of kind Unreachable): trying the same target through another proxy will probably
// fail too, and the proxy itself is not to blame.
func TargetFault(err error) bool {
	var re *ReplyError
	return errors.As(err, &re) && re.Kind == Unreachable
}
