package extract

import (
	"bytes"
	"errors"
	"fmt"
	"mime"
	"strings"
	"unicode/utf8"

	"github.com/proxyline/proxyline/proxy"
)

// Format is how a source's body is read.
type Format string

// The formats. Auto detects one from the content type and the first bytes.
const (
	Auto     Format = "auto"
	TextF    Format = "text"
	JSONF    Format = "json"
	CSVF     Format = "csv"
	HTMLF    Format = "html"
	formatNo Format = ""
)

// Formats lists the format names a source may be given.
func Formats() []Format { return []Format{Auto, TextF, JSONF, CSVF, HTMLF} }

// ParseFormat checks a format name; "" is Auto.
func ParseFormat(s string) (Format, error) {
	f := Format(strings.ToLower(strings.TrimSpace(s)))
	switch f {
	case formatNo:
		return Auto, nil
	case Auto, TextF, JSONF, CSVF, HTMLF:
		return f, nil
	}
	return "", fmt.Errorf("format %q: want auto, text, json, csv or html", s)
}

// ErrBinary is a body that is not text at all (an image, an archive, random bytes).
var ErrBinary = errors.New("binary content, not a proxy list")

// Body finds the candidates in a source's body in format f. For Auto the format is taken from
// the content type (JSON, CSV, HTML), else from the first meaningful bytes: '{', or '[' opening
// an array of objects, strings or arrays, is JSON; '<' is HTML; a first line with a separator and
// a known column name is CSV; anything else is text. A body with NUL bytes or mostly
// non-printable bytes is ErrBinary, whatever the format. It returns the format used.
func Body(b []byte, contentType string, f Format, o Options, emit func(proxy.Proxy)) (Format, error) {
	b = bytes.TrimPrefix(b, []byte("\ufeff"))
	if binary(b) {
		ct := contentType
		if ct == "" {
			ct = "none"
		}
		return f, fmt.Errorf("%w (content type %s)", ErrBinary, ct)
	}
	if f == Auto || f == formatNo {
		f = detect(b, contentType)
	}
	var err error
	switch f {
	case JSONF:
		err = JSON(b, o, emit)
		if err != nil && contentType != "" {
			err = fmt.Errorf("%w (content type %s)", err, contentType)
		}
	case CSVF:
		err = CSV(b, o, emit)
	case HTMLF:
		err = HTML(b, o, emit)
	default:
		f = TextF
		err = Text(b, o, emit)
	}
	return f, err
}

func detect(b []byte, contentType string) Format {
	mt, _, _ := mime.ParseMediaType(contentType)
	switch {
	case isJSONType(contentType):
		return JSONF
	case mt == "text/csv":
		return CSVF
	case mt == "text/html" || mt == "application/xhtml+xml":
		return HTMLF
	}
	t := bytes.TrimLeft(b, " \t\r\n")
	if len(t) == 0 {
		return TextF
	}
	switch t[0] {
	case '{':
		return JSONF
	case '[':
		u := bytes.TrimLeft(t[1:], " \t\r\n")
		if len(u) > 0 && (u[0] == '{' || u[0] == '"' || u[0] == '[' || u[0] == ']') {
			return JSONF
		}
	case '<':
		return HTMLF
	}
	if csvHeader(t) {
		return CSVF
	}
	return TextF
}

func isJSONType(ct string) bool {
	mt, _, _ := mime.ParseMediaType(ct)
	return mt == "application/json" || strings.HasSuffix(mt, "+json") || mt == "application/x-ndjson"
}

// csvHeader reports whether the first line looks like a CSV header naming a known column.
func csvHeader(b []byte) bool {
	line := b
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		line = b[:i]
	}
	sep := separator(line)
	if !bytes.ContainsRune(line, sep) {
		return false
	}
	host, port := false, false
	for _, f := range strings.Split(string(line), string(sep)) {
		switch columns[strings.ToLower(strings.Trim(strings.TrimSpace(f), `"`))] {
		case "host":
			host = true
		case "port":
			port = true
		case "url":
			host, port = true, true
		}
	}
	return host && port
}

// binary looks at the first 8 KiB: a NUL byte, invalid UTF-8 past the cut, or more than 10 %
// control bytes other than white space mean binary.
func binary(b []byte) bool {
	head := b[:min(len(b), 8<<10)]
	if bytes.IndexByte(head, 0) >= 0 {
		return true
	}
	ctl := 0
	for _, c := range head {
		if c < 0x20 && c != '\n' && c != '\r' && c != '\t' && c != '\f' {
			ctl++
		}
	}
	if ctl*10 > len(head) {
		return true
	}
	valid := head
	for i := 0; i < utf8.UTFMax && len(valid) > 0 && !utf8.Valid(valid); i++ {
		valid = valid[:len(valid)-1] // a rune cut by the 8 KiB boundary
	}
	return !utf8.Valid(valid) && invalidShare(head) > 0.1
}

// invalidShare is the share of bytes that are not part of valid UTF-8 (Latin-1 pages have a
// few; binary data has many).
func invalidShare(b []byte) float64 {
	bad := 0
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			bad++
		}
		i += n
	}
	return float64(bad) / float64(max(len(b), 1))
}
