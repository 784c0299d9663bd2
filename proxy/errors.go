package proxy

import (
	"errors"
	"strconv"
	"unicode/utf8"
)

// The reasons a proxy is rejected. A *LineError's Err is one of these, possibly wrapped with
// detail; test with errors.Is. Their text is written to follow the quoted offending text, as in
// `port: "99999" out of range 1-65535`.
var (
	ErrSyntax      = errors.New("is not a proxy (want scheme://[user:pass@]host:port, host:port, host:port:user:pass or user:pass@host:port)")
	ErrMissing     = errors.New("missing")
	ErrScheme      = errors.New("is not a known scheme (http, https, socks4, socks4a, socks5, socks5h)")
	ErrHost        = errors.New("is not a valid host name or IP address")
	ErrIPv6        = errors.New("is an IPv6 address without brackets: write [2001:db8::1]:8080")
	ErrPortSyntax  = errors.New("is not a port number")
	ErrPortRange   = errors.New("out of range 1-65535")
	ErrCredentials = errors.New("is not a usable credential")
	ErrJSON        = errors.New("is not a JSON object")
	ErrCSVHeader   = errors.New("is not a usable CSV header: it needs a url or proxy column, or host (or ip) and port columns")
	ErrLineTooLong = errors.New("line longer than 1 MiB")
)

// maxText is how much of the offending text a LineError keeps, so that a list of errors from a
// huge bad file stays small.
const maxText = 200

// LineError is a rejected proxy: where it was, which field was wrong, the offending text and why.
// Read returns one per bad line and carries on with the next line; Parse returns one with File ""
// and Line 0.
type LineError struct {
	File  string // the name given to Read; empty for Parse
	Line  int    // 1-based line number; 0 for Parse
	Field string // "scheme", "host", "port", "user", "password", or "" for the whole line
	Text  string // the offending text (the field's value, or the line), cut to 200 bytes
	Err   error  // one of the Err* values above, possibly wrapped with detail
}

// Error reads like `proxies.txt:17: port: "99999" out of range 1-65535`.
func (e *LineError) Error() string {
	var b []byte
	switch {
	case e.File != "" && e.Line > 0:
		b = append(b, e.File...)
		b = append(b, ':')
		b = strconv.AppendInt(b, int64(e.Line), 10)
		b = append(b, ": "...)
	case e.File != "":
		b = append(b, e.File...)
		b = append(b, ": "...)
	case e.Line > 0:
		b = append(b, "line "...)
		b = strconv.AppendInt(b, int64(e.Line), 10)
		b = append(b, ": "...)
	}
	if e.Field != "" {
		b = append(b, e.Field...)
		b = append(b, ": "...)
	}
	if e.Text != "" || e.Field == "" {
		b = strconv.AppendQuote(b, e.Text)
		b = append(b, ' ')
	}
	if e.Err != nil {
		b = append(b, e.Err.Error()...)
	}
	return string(b)
}

// Unwrap returns Err, so errors.Is(err, proxy.ErrPortRange) works.
func (e *LineError) Unwrap() error { return e.Err }

// fieldError builds a LineError for one field, keeping at most maxText bytes of the text.
func fieldError(field, text string, err error) *LineError {
	return &LineError{Field: field, Text: cut(text), Err: err}
}

// cut shortens s to at most maxText bytes without splitting a UTF-8 sequence, marking the cut.
func cut(s string) string {
	if len(s) <= maxText {
		return s
	}
	i := maxText
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}
