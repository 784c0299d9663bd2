package proxy

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// csvColumn maps a column name, lower-cased, to the field it holds. The first column found for a
// field wins.
func csvColumn(name string) (int, bool) {
	switch name {
	case "url", "proxy":
		return colURL, true
	case "scheme", "protocol", "type":
		return colScheme, true
	case "host", "ip":
		return colHost, true
	case "port":
		return colPort, true
	case "user", "username":
		return colUser, true
	case "password", "pass":
		return colPassword, true
	}
	return 0, false
}

const (
	colURL = iota
	colScheme
	colHost
	colPort
	colUser
	colPassword
	numCols
)

// csvComma picks the field separator of a header line: the first of ',', tab and ';' in it.
func csvComma(header string) rune {
	if i := strings.IndexAny(header, ",\t;"); i >= 0 {
		return rune(header[i])
	}
	return ','
}

// splitHeader splits a header line into lower-cased, trimmed, unquoted column names. It is only
// for detection and may be naive about quoting.
func splitHeader(line string) []string {
	names := strings.Split(line, string(csvComma(line)))
	for i, n := range names {
		names[i] = strings.ToLower(strings.Trim(strings.TrimSpace(n), `"`))
	}
	return names
}

// isCSVHeader reports whether line names at least one known column.
func isCSVHeader(line string) bool {
	for _, n := range splitHeader(line) {
		if _, ok := csvColumn(n); ok {
			return true
		}
	}
	return false
}

// readCSV reads a CSV list: a header row, then one proxy per row. A row with a non-empty url or
// proxy column is parsed as Parse does; otherwise the separate columns make the proxy.
//
// The rows reach encoding/csv through a csvFeeder, which finds where each record ends: a quoted
// field may span lines, but one whose quote is never closed (within maxQuotedLines lines) is
// reported at the line where it opened, with that line's text, and reading goes on at the next
// line, so that the rest of the list is neither swallowed into the field nor its bad lines hidden.
func (c *collector) readCSV(br *bufio.Reader) error {
	// Look at the header line to choose the separator; the csv.Reader then reads it again.
	header, consumed, err := firstLine(br)
	if err != nil {
		return err
	}
	comma := csvComma(header)
	f := &csvFeeder{lr: &lineReader{br: bufio.NewReaderSize(io.MultiReader(bytes.NewReader(consumed), br), 64<<10)}, comma: comma, c: c}
	cr := csv.NewReader(f)
	cr.Comma = comma
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	cr.ReuseRecord = true
	cr.Comment = '#'
	err = c.readCSVRecords(cr, f.origLine)
	// The feeder reports unclosed quotes as it finds them, ahead of the rows csv returns.
	sort.SliceStable(c.errs, func(i, j int) bool { return c.errs[i].Line < c.errs[j].Line })
	if err == nil {
		err = f.err
	}
	return err
}

func (c *collector) readCSVRecords(cr *csv.Reader, origLine func(int) int) error {
	var cols [numCols]int
	header := true
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			// The record's first line: where a bad quoted field began, not where csv gave up.
			c.fail(origLine(pe.StartLine), fieldError("", "", pe.Err))
			continue
		}
		if err != nil {
			return err
		}
		line, _ := cr.FieldPos(0)
		line = origLine(line)
		if header {
			header = false
			for i := range cols {
				cols[i] = -1
			}
			for i, name := range rec {
				f, ok := csvColumn(strings.ToLower(strings.TrimSpace(name)))
				if ok && cols[f] < 0 {
					cols[f] = i
				}
			}
			if cols[colURL] < 0 && (cols[colHost] < 0 || cols[colPort] < 0) {
				c.fail(line, fieldError("", strings.Join(rec, string(cr.Comma)), ErrCSVHeader))
				return nil
			}
			continue
		}
		var v [numCols]string
		empty := true
		for f, i := range cols {
			if i >= 0 && i < len(rec) {
				v[f] = rec[i]
				if strings.TrimSpace(rec[i]) != "" {
					empty = false
				}
			}
		}
		if empty {
			continue
		}
		var p Proxy
		var lerr *LineError
		if u := strings.TrimSpace(v[colURL]); u != "" {
			p, lerr = parse(u)
		} else {
			p, lerr = build(v[colScheme], v[colHost], v[colPort], v[colUser], v[colPassword])
		}
		if lerr != nil {
			c.fail(line, lerr)
			continue
		}
		c.add(p)
	}
}

// maxQuotedLines bounds the lines a quoted field may span before its quote counts as never
// closed: proxy lists have no reason for more, and the bound keeps what is buffered small.
const maxQuotedLines = 64

// ErrCSVQuote is the reason of a quoted field whose closing quote never comes.
var ErrCSVQuote = errors.New(`opens a quoted field (") that is never closed`)

// csvFeeder gives encoding/csv the list's lines, whole records at a time: a record whose quoted
// field is still open at the end of a line takes the following lines until it closes. A record
// whose quote is never closed (at the end of the input, or within maxQuotedLines lines) is not
// given: its first line is reported with ErrCSVQuote and dropped, and the lines after it are
// read again as new records. Lines longer than maxLine are reported and dropped likewise.
type csvFeeder struct {
	lr    *lineReader
	comma rune
	c     *collector
	err   error // a read error of the input, returned by readCSV after the rows before it

	pending []numberedLine // lines read ahead, given again before lr's
	buf     []byte         // the record being given, not yet read by csv
	fed     int            // lines given to csv so far
	shifts  []int          // for each dropped line: how many lines had been given before it
}

type numberedLine struct {
	n    int
	text string
}

// origLine maps a line number of what csv read to the line of the input.
func (f *csvFeeder) origLine(fed int) int {
	n := fed
	for _, s := range f.shifts {
		if s < fed {
			n++
		}
	}
	return n
}

// Read gives csv the next records.
func (f *csvFeeder) Read(p []byte) (int, error) {
	for len(f.buf) == 0 {
		rec, err := f.record()
		if err != nil {
			return 0, err
		}
		f.buf = rec
	}
	n := copy(p, f.buf)
	f.buf = f.buf[n:]
	return n, nil
}

// next returns the next line of the input, io.EOF after the last.
func (f *csvFeeder) next() (numberedLine, error) {
	if len(f.pending) > 0 {
		l := f.pending[0]
		f.pending = f.pending[1:]
		return l, nil
	}
	for {
		b, tooLong, err := f.lr.next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				f.err = err
				return numberedLine{}, io.EOF
			}
			return numberedLine{}, err
		}
		if tooLong {
			f.drop(numberedLine{f.lr.line, string(b[:min(len(b), maxText)])}, ErrLineTooLong)
			continue
		}
		return numberedLine{f.lr.line, string(b)}, nil
	}
}

// drop reports line l with reason and leaves it out of what csv reads.
func (f *csvFeeder) drop(l numberedLine, reason error) {
	f.shifts = append(f.shifts, f.fed)
	f.c.fail(l.n, fieldError("", l.text, reason))
}

// record returns the next whole record, its lines each ended by "\n".
func (f *csvFeeder) record() ([]byte, error) {
	for {
		first, err := f.next()
		if err != nil {
			return nil, err
		}
		lines := []numberedLine{first}
		open := !strings.HasPrefix(first.text, "#") && quoteOpen(first.text, byte(f.comma), false)
		for open && len(lines) <= maxQuotedLines {
			l, err := f.next()
			if err != nil {
				break
			}
			lines = append(lines, l)
			open = quoteOpen(l.text, byte(f.comma), true)
		}
		if open {
			// Never closed: report where it opened, and read what followed as records again.
			f.drop(first, ErrCSVQuote)
			f.pending = append(append([]numberedLine(nil), lines[1:]...), f.pending...)
			continue
		}
		var b []byte
		for _, l := range lines {
			b = append(append(b, l.text...), '\n')
		}
		f.fed += len(lines)
		return b, nil
	}
}

// quoteOpen reports whether a quoted field is still open at the end of line, which starts inside
// one when inQuote, following encoding/csv's rules with TrimLeadingSpace: leading white space of
// a field is skipped (even when the separator is a tab, as csv does); a field is quoted when its
// first character then is '"'; in it, "" is a quote, and a '"' followed by the separator or the
// end of the line closes it; a '"' followed by anything else is csv's ErrQuote, which ends the
// record at the end of this line.
func quoteOpen(line string, comma byte, inQuote bool) bool {
	fieldStart := !inQuote
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case inQuote:
			if c != '"' {
				continue
			}
			switch {
			case i+1 < len(line) && line[i+1] == '"':
				i++ // an escaped quote
			case i+1 == len(line) || line[i+1] == comma:
				inQuote = false
			default:
				return false
			}
		case fieldStart && c < utf8.RuneSelf && unicode.IsSpace(rune(c)):
		case fieldStart && c >= utf8.RuneSelf:
			r, size := utf8.DecodeRuneInString(line[i:])
			if !unicode.IsSpace(r) {
				fieldStart = false
			}
			i += size - 1
		case c == comma:
			fieldStart = true
		case fieldStart && c == '"':
			inQuote, fieldStart = true, false
		case c == '"':
			return false // csv's ErrBareQuote, which ends the record likewise
		default:
			fieldStart = false
		}
	}
	return inQuote
}
