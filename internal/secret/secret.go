// Package secret is the one place that masks secrets (database and proxy passwords) before text
// leaves the program: status output, logs, errors. Redact finds them in free text: the password of
// a URL's user:pass@, and the value of a password-like parameter, in a URL's query (?password=,
// &sslpassword=) or a PostgreSQL key/value string (password=... or password='...'). Error wraps an
// error so that its message is masked and errors.Is/As still see through it; ReplaceAttr does the
// same for every attribute and message of a log/slog handler.
//
// Masking is a safety net, not permission to pass secrets around: code that prints a value it
// knows to hold credentials (a database URL, a proxy) masks it where it prints it.
package secret

import (
	"fmt"
	"log/slog"
	"strings"
)

// Mask replaces every secret; it is what net/url's URL.Redacted writes.
const Mask = "xxxxx"

// Redact returns s with every secret it holds replaced by Mask: the password of each
// scheme://user:password@ in it, and the value of each parameter whose name contains "pass" or
// "secret" or is "pwd" (password, sslpassword, passwd, ...), whether it follows '?', '&', ';', white
// space or the start of s. The rest of s is kept as it was, so a masked URL still reads as the
// URL that was given.
func Redact(s string) string {
	if !maybeSecret(s) {
		return s
	}
	return redactParams(redactUserinfo(s))
}

// maybeSecret is a cheap test that lets most strings through untouched.
func maybeSecret(s string) bool {
	return strings.Contains(s, "@") || strings.Contains(s, "=")
}

// redactUserinfo masks the password of every "://user:password@" in s. The userinfo ends at the
// last '@' before the authority ends ('/', '?', '#', white space or a quote), so a password
// holding an unescaped '@' is masked whole.
func redactUserinfo(s string) string {
	var b strings.Builder
	rest := s
	for {
		i := strings.Index(rest, "://")
		if i < 0 {
			break
		}
		start := i + 3
		end := start + authorityEnd(rest[start:])
		auth := rest[start:end]
		at := strings.LastIndexByte(auth, '@')
		colon := strings.IndexByte(auth, ':')
		if at < 0 || colon < 0 || colon > at {
			b.WriteString(rest[:end])
			rest = rest[end:]
			continue
		}
		b.WriteString(rest[:start+colon+1])
		b.WriteString(Mask)
		b.WriteString(auth[at:])
		rest = rest[end:]
	}
	if b.Len() == 0 {
		return s
	}
	b.WriteString(rest)
	return b.String()
}

// authorityEnd returns the length of the URL authority at the start of s.
func authorityEnd(s string) int {
	if i := strings.IndexAny(s, "/?#\"'` \t\r\n"); i >= 0 {
		return i
	}
	return len(s)
}

// redactParams masks the value of every password-like key=value parameter in s.
func redactParams(s string) string {
	var b strings.Builder
	last := 0 // s[:last] is written to b
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			continue
		}
		j := i // the key is s[k:j]; key/value strings allow spaces around '='
		for j > 0 && s[j-1] == ' ' {
			j--
		}
		k := j
		for k > 0 && isKeyByte(s[k-1]) {
			k--
		}
		if k == j || !secretKey(s[k:j]) {
			continue
		}
		v := i + 1 // the value starts here; spaces around '=' are allowed in key/value strings
		for v < len(s) && s[v] == ' ' {
			v++
		}
		end := valueEnd(s, v)
		b.WriteString(s[last:v])
		b.WriteString(Mask)
		last = end
		i = end - 1
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

func isKeyByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.'
}

// secretKey reports whether a parameter named key holds a secret.
func secretKey(key string) bool {
	k := strings.ToLower(key)
	return strings.Contains(k, "pass") || strings.Contains(k, "secret") || k == "pwd"
}

// valueEnd returns the end of the parameter value starting at s[v]: a single-quoted value (the
// key/value connection string form, where \' escapes a quote) ends after its closing quote; any
// other at '&', '#', white space or a double quote.
func valueEnd(s string, v int) int {
	if v < len(s) && s[v] == '\'' {
		for j := v + 1; j < len(s); j++ {
			switch s[j] {
			case '\\':
				j++
			case '\'':
				return j + 1
			}
		}
		return len(s)
	}
	if j := strings.IndexAny(s[v:], "&# \t\r\n\""); j >= 0 {
		return v + j
	}
	return len(s)
}

// Error returns err with its message masked by Redact; errors.Is and errors.As see the original
// through it. Nil stays nil.
func Error(err error) error {
	if err == nil {
		return nil
	}
	return redacted{err}
}

type redacted struct{ err error }

func (r redacted) Error() string { return Redact(r.err.Error()) }
func (r redacted) Unwrap() error { return r.err }

// ReplaceAttr masks secrets in a log record: use it as slog.HandlerOptions.ReplaceAttr. It is
// called for the message too. Strings, errors, fmt.Stringers and other values are masked in their
// text form; a value without a secret is passed on unchanged.
func ReplaceAttr(_ []string, a slog.Attr) slog.Attr {
	v := a.Value
	switch v.Kind() {
	case slog.KindString:
		if s := v.String(); maybeSecret(s) {
			if r := Redact(s); r != s {
				a.Value = slog.StringValue(r)
			}
		}
	case slog.KindAny:
		var text string
		switch x := v.Any().(type) {
		case error:
			text = x.Error()
		case fmt.Stringer:
			text = x.String()
		default:
			text = fmt.Sprint(x)
		}
		if r := Redact(text); r != text {
			if err, ok := v.Any().(error); ok {
				a.Value = slog.AnyValue(Error(err))
			} else {
				a.Value = slog.StringValue(r)
			}
		}
	}
	return a
}
