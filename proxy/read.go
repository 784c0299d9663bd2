package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxLine is the longest line read; a longer one is reported as ErrLineTooLong and skipped.
const maxLine = 1 << 20

// Read reads a proxy list in format f (Auto detects it: a first meaningful line starting with '{'
// is JSONL, one that is a CSV header naming a known column is CSV, anything else Text). A UTF-8
// byte order mark, CRLF line ends, blank lines and '#' comment lines are accepted in every format;
// text lines may also end with a comment after white space. Duplicates (== Proxy values) are
// dropped, keeping the first; the order is kept.
//
// Each bad line gives one *LineError, named with name (usually the file name) and its line, and
// reading goes on: the proxies of the good lines are always returned. The error is only for
// failing to read r; what was read before it is returned too.
func Read(r io.Reader, name string, f Format) ([]Proxy, []*LineError, error) {
	c := &collector{name: name, seen: map[Proxy]struct{}{}}
	err := c.read(r, f)
	return c.out, c.errs, err
}

// Scan reads a proxy list like Read, but keeps nothing: it calls onProxy for each proxy and
// onError for each bad line as it reads them, so memory stays flat whatever the input's size
// (a caller that must bound the work stops the reader: Scan returns its error, wrapped).
// Duplicates are not dropped. Either callback may be nil.
func Scan(r io.Reader, name string, f Format, onProxy func(Proxy), onError func(*LineError)) error {
	c := &collector{name: name, onProxy: onProxy, onError: onError}
	if c.onProxy == nil {
		c.onProxy = func(Proxy) {}
	}
	if c.onError == nil {
		c.onError = func(*LineError) {}
	}
	return c.read(r, f)
}

func (c *collector) read(r io.Reader, f Format) error {
	br := bufio.NewReaderSize(r, 64<<10)
	if b, err := br.Peek(3); err == nil && bytes.Equal(b, []byte("\ufeff")) {
		_, _ = br.Discard(3)
	}
	src := br
	if f == Auto {
		var prefix []byte
		var err error
		f, prefix, err = detect(br)
		if err != nil {
			return fmt.Errorf("read proxy list %s: %w", c.name, err)
		}
		src = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(prefix), br), 64<<10)
	}
	var err error
	switch f {
	case Text:
		err = c.readLines(src, parseTextLine)
	case JSONL:
		err = c.readLines(src, parseJSONLine)
	case CSV:
		err = c.readCSV(src)
	default:
		return fmt.Errorf("read proxy list %s: unknown format %q", c.name, f)
	}
	if err != nil {
		err = fmt.Errorf("read proxy list %s: %w", c.name, err)
	}
	return err
}

// ReadFile reads the proxy list in the file at path with Read. "-" is an ordinary file name here:
// callers that offer stdin handle it themselves.
func ReadFile(path string, f Format) ([]Proxy, []*LineError, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read proxy list: %w", err)
	}
	defer fh.Close()
	return Read(fh, path, f)
}

// collector gathers the proxies and errors of one Read, or hands them on (Scan).
type collector struct {
	name string
	seen map[Proxy]struct{}
	out  []Proxy
	errs []*LineError
	// onProxy and onError, when set (Scan), receive what Read would keep.
	onProxy func(Proxy)
	onError func(*LineError)
}

func (c *collector) add(p Proxy) {
	if c.onProxy != nil {
		c.onProxy(p)
		return
	}
	if _, ok := c.seen[p]; ok {
		return
	}
	c.seen[p] = struct{}{}
	c.out = append(c.out, p)
}

func (c *collector) fail(line int, e *LineError) {
	e.File, e.Line = c.name, line
	if c.onError != nil {
		c.onError(e)
		return
	}
	c.errs = append(c.errs, e)
}

// detect decides the format from the first meaningful line. It returns the bytes it consumed,
// to be read again by the chosen reader.
func detect(br *bufio.Reader) (Format, []byte, error) {
	s, consumed, err := firstLine(br)
	switch {
	case err != nil:
		return Auto, nil, err
	case s == "":
		return Text, consumed, nil
	case s[0] == '{':
		return JSONL, consumed, nil
	case isCSVHeader(s):
		return CSV, consumed, nil
	}
	return Text, consumed, nil
}

// firstLine reads up to the first meaningful line (not blank, not a '#' comment) and returns it
// trimmed, with all the bytes it consumed. At the end of the input, or past a line longer than
// maxLine, it returns "".
func firstLine(br *bufio.Reader) (string, []byte, error) {
	var consumed, cur []byte
	for {
		chunk, err := br.ReadSlice('\n')
		consumed = append(consumed, chunk...)
		cur = append(cur, chunk...)
		if errors.Is(err, bufio.ErrBufferFull) {
			if len(cur) > maxLine {
				return "", consumed, nil
			}
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return "", nil, err
		}
		s := strings.TrimSpace(string(cur))
		cur = cur[:0]
		if s != "" && s[0] != '#' {
			return s, consumed, nil
		}
		if err != nil { // io.EOF
			return "", consumed, nil
		}
	}
}

// lineReader splits input into lines without their "\n" or "\r\n", counting them.
type lineReader struct {
	br   *bufio.Reader
	buf  []byte
	line int // number of the last line returned
}

// next returns the next line, valid until the following call, and whether it was longer than
// maxLine (it is then cut). It returns io.EOF after the last line.
func (lr *lineReader) next() ([]byte, bool, error) {
	lr.buf = lr.buf[:0]
	tooLong := false
	for {
		chunk, err := lr.br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			if len(lr.buf)+len(chunk) <= maxLine {
				lr.buf = append(lr.buf, chunk...)
			} else {
				tooLong = true
			}
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, false, err
		}
		if errors.Is(err, io.EOF) && len(chunk) == 0 && len(lr.buf) == 0 && !tooLong {
			return nil, false, io.EOF
		}
		line := chunk
		if len(lr.buf) > 0 || tooLong {
			if len(lr.buf)+len(chunk) <= maxLine {
				lr.buf = append(lr.buf, chunk...)
			} else {
				tooLong = true
			}
			line = lr.buf
		}
		lr.line++
		line = bytes.TrimSuffix(line, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		return line, tooLong, nil
	}
}

// readLines reads a line-based format, giving each meaningful line to parseLine.
func (c *collector) readLines(br *bufio.Reader, parseLine func(string) (Proxy, *LineError)) error {
	lr := &lineReader{br: br}
	for {
		b, tooLong, err := lr.next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if tooLong {
			c.fail(lr.line, fieldError("", string(b[:min(len(b), maxText)]), ErrLineTooLong))
			continue
		}
		s := strings.TrimSpace(string(b))
		if s == "" || s[0] == '#' {
			continue
		}
		p, lerr := parseLine(s)
		if lerr != nil {
			c.fail(lr.line, lerr)
			continue
		}
		c.add(p)
	}
}

// parseTextLine parses one trimmed text line, dropping a trailing comment: a '#' after white
// space.
func parseTextLine(s string) (Proxy, *LineError) {
	return parse(stripComment(s))
}

// stripComment removes a '#' that follows white space, and everything after it.
func stripComment(s string) string {
	for i := 1; i < len(s); i++ {
		if s[i] != '#' {
			continue
		}
		if r, _ := utf8.DecodeLastRuneInString(s[:i]); unicode.IsSpace(r) {
			return strings.TrimSpace(s[:i])
		}
	}
	return s
}
