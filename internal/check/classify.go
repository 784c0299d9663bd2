package check

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
)

// classError is a failed step of a check, with the class it maps to.
type classError struct {
	class Class
	err   error
}

func (e *classError) Error() string { return e.err.Error() }
func (e *classError) Unwrap() error { return e.err }

// fail returns an error of the given class, formatted like fmt.Errorf.
func fail(class Class, format string, args ...any) error {
	return &classError{class: class, err: fmt.Errorf(format, args...)}
}

// classOf returns the class of a check error; errors that were never classed are BadResponse.
func classOf(err error) Class {
	var ce *classError
	if errors.As(err, &ce) {
		return ce.class
	}
	return BadResponse
}

// ioFailure classes an I/O error of the step named by what. ctx decides between Canceled and
// Timeout when the check's context ended; otherwise the error itself does.
func ioFailure(ctx context.Context, what string, err error) error {
	return &classError{class: ioClass(ctx, err), err: fmt.Errorf("%s: %w", what, err)}
}

func ioClass(ctx context.Context, err error) Class {
	switch ctx.Err() {
	case context.Canceled:
		return Canceled
	case context.DeadlineExceeded:
		return Timeout
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return Canceled
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return Timeout
	case errors.Is(err, syscall.ECONNREFUSED),
		// The proxy's host is unreachable: as dead as a refused port, and not the proxy's report
		// about the judge (which is Unreachable).
		errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return Refused
	}
	return BadResponse
}

// tlsFailure classes an error of a TLS handshake: timeouts and cancellation as usual, everything
// else (certificate, alert, a peer that is not speaking TLS) is TLSError.
func tlsFailure(ctx context.Context, what string, err error) error {
	class := ioClass(ctx, err)
	switch {
	case class == Timeout || class == Canceled:
	case isTampering(err):
		return fail(Mismatch, "%s: the tunnel altered the judge's TLS stream: %w", what, err)
	default:
		class = TLSError
	}
	return &classError{class: class, err: fmt.Errorf("%s: %w", what, err)}
}

// isTampering reports whether a TLS error proves the bytes were changed on the way: a record
// whose MAC does not verify, on our side or the judge's. Through a proxy that means the proxy
// altered the judge's stream: a liar, not a TLS problem. crypto/tls reports its own (local)
// alerts with an unexported type, so the local case is recognised by its fixed text.
func isTampering(err error) bool {
	var ae tls.AlertError
	if errors.As(err, &ae) && (ae == alertBadRecordMAC || ae == alertDecryptError) {
		return true
	}
	return strings.Contains(err.Error(), "tls: bad record MAC")
}

// TLS alert numbers (RFC 8446 section 6).
const (
	alertBadRecordMAC tls.AlertError = 20
	alertDecryptError tls.AlertError = 51
)

// isClosed reports whether err means the peer closed the connection.
func isClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
