package extract

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"golang.org/x/net/html"

	"github.com/proxyline/proxyline/proxy"
)

// columns maps a table's header names to the proxy fields (the names of docs/formats.md plus
// those free-proxy sites use).
var columns = map[string]string{
	"url": "url", "proxy": "url",
	"host": "host", "ip": "host", "ip address": "host", "address": "host", "ip_address": "host",
	"port":   "port",
	"scheme": "scheme", "protocol": "scheme", "type": "scheme", "proxy type": "scheme",
	"user": "user", "username": "user", "login": "user",
	"password": "password", "pass": "password",
}

// table finds the candidates in rows of cells: by the header's column names when the first row
// names a host and a port column, else every cell holding a whole candidate and every IP cell
// followed by a port cell.
func table(rows [][]string, o Options, emit func(proxy.Proxy), e *errs) {
	if len(rows) == 0 {
		return
	}
	idx := map[string]int{}
	for i, h := range rows[0] {
		if f, ok := columns[strings.ToLower(strings.TrimSpace(h))]; ok {
			if _, dup := idx[f]; !dup {
				idx[f] = i
			}
		}
	}
	_, hasHost := idx["host"]
	_, hasPort := idx["port"]
	_, hasURL := idx["url"]
	data := rows
	if hasURL || hasHost && hasPort {
		data = rows[1:]
	}
	for _, row := range data {
		if hasHost && hasPort && fromColumns(row, idx, o, emit) {
			continue
		}
		loose(row, o, emit, e)
	}
}

// fromColumns builds the row's proxy from the named columns; false if the row has none.
func fromColumns(row []string, idx map[string]int, o Options, emit func(proxy.Proxy)) bool {
	cell := func(f string) string {
		if i, ok := idx[f]; ok && i < len(row) {
			return strings.TrimSpace(row[i])
		}
		return ""
	}
	host, port := cell("host"), cell("port")
	if host == "" || port == "" {
		return false
	}
	p, err := proxy.FromFields(schemeOf(cell("scheme")), host, port, cell("user"), cell("password"))
	if err != nil {
		return false
	}
	emitChecked(p, o, emit)
	return true
}

// loose finds candidates in a row without usable headers: each cell's text, and each IP cell
// followed by a port cell ("1.2.3.4 | 8080 | HTTP").
func loose(row []string, o Options, emit func(proxy.Proxy), e *errs) {
	for i, c := range row {
		c = strings.TrimSpace(c)
		if strings.IndexByte(c, ':') >= 0 {
			if err := Text([]byte(c), o, emit); err != nil {
				e.add(err)
			}
			continue
		}
		if i+1 >= len(row) {
			continue
		}
		a, err := netip.ParseAddr(c)
		if err != nil || a.Zone() != "" {
			continue
		}
		scheme := ""
		if i+2 < len(row) {
			scheme = schemeOf(row[i+2])
		}
		p, err := proxy.FromFields(scheme, c, strings.TrimSpace(row[i+1]), "", "")
		if err != nil {
			continue
		}
		emitChecked(p, o, emit)
	}
}

// schemeOf reads a protocol cell: a known scheme name, else "" (unknown, probed).
func schemeOf(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	switch s {
	case "http", "https", "socks4", "socks4a", "socks5", "socks5h":
		return s
	}
	return ""
}

// emitChecked applies Options to a candidate built from fields and emits it.
func emitChecked(p proxy.Proxy, o Options, emit func(proxy.Proxy)) {
	if !o.Hostnames {
		if _, err := netip.ParseAddr(p.Host); err != nil {
			return
		}
	}
	if p.Scheme == proxy.Unknown {
		p.Scheme = o.Scheme
	}
	emit(p)
}

// HTML finds the candidates in an HTML page: in its tables (see CSV for how rows are read), and
// in the rest of its visible text (a <pre> or <textarea> list, prose). Script and style
// contents are skipped. A page that is not well-formed is read as far as the tokenizer gets.
func HTML(b []byte, o Options, emit func(proxy.Proxy)) error {
	h := htmlScanner{o: o, emit: emit}
	z := html.NewTokenizer(bytes.NewReader(b))
	for tt := z.Next(); tt != html.ErrorToken; tt = z.Next() {
		name, _ := z.TagName()
		switch tt {
		case html.StartTagToken:
			h.start(string(name))
		case html.EndTagToken:
			h.end(string(name))
		case html.TextToken:
			h.text(z.Text())
		}
	}
	if len(h.rows) > 0 {
		h.flushTable()
	}
	if err := Text(h.buf.Bytes(), o, emit); err != nil {
		h.e.add(err)
	}
	if err := z.Err(); err != nil && !errors.Is(err, io.EOF) {
		h.e.add(fmt.Errorf("html: %w", err))
	}
	return h.e.err()
}

// htmlScanner is the state of one HTML pass: the visible text outside tables, and the rows of
// the table being read.
type htmlScanner struct {
	o       Options
	emit    func(proxy.Proxy)
	e       errs
	buf     bytes.Buffer // visible text outside tables
	rows    [][]string
	row     []string
	cell    *strings.Builder // the cell being read, nil outside cells
	skip    int              // inside script/style
	inTable int
}

func (h *htmlScanner) start(name string) {
	switch name {
	case "script", "style":
		h.skip++
	case "table":
		h.inTable++
	case "tr":
		h.row = nil
	case "td", "th":
		h.cell = &strings.Builder{}
	case "br", "p", "div", "li":
		h.buf.WriteByte('\n')
	}
}

func (h *htmlScanner) end(name string) {
	switch name {
	case "script", "style":
		h.skip = max(h.skip-1, 0)
	case "td", "th":
		if h.cell != nil {
			h.row = append(h.row, h.cell.String())
			h.cell = nil
		}
	case "tr":
		if len(h.row) > 0 {
			h.rows = append(h.rows, h.row)
		}
		h.row = nil
	case "table":
		h.inTable = max(h.inTable-1, 0)
		h.flushTable()
	}
}

func (h *htmlScanner) text(t []byte) {
	if h.skip > 0 {
		return
	}
	if h.cell != nil && h.inTable > 0 {
		h.cell.Write(t)
		return
	}
	h.buf.Write(t)
	h.buf.WriteByte('\n')
}

func (h *htmlScanner) flushTable() {
	table(h.rows, h.o, h.emit, &h.e)
	h.rows = nil
}

// CSV finds the candidates in comma-, semicolon- or tab-separated values (the separator is the
// one the first line has most of). When the first row names a host and a port column (ip, host,
// address; port; protocol, type; user, password: any case) each row is read by those columns;
// otherwise every cell that holds a whole candidate, and every IP cell followed by a port cell,
// count. Quoting follows RFC 4180 loosely (stray quotes are kept).
func CSV(b []byte, o Options, emit func(proxy.Proxy)) error {
	r := csv.NewReader(bytes.NewReader(b))
	r.Comma = separator(b)
	r.FieldsPerRecord = -1
	r.LazyQuotes = true
	r.ReuseRecord = false
	var rows [][]string
	var e errs
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			e.add(fmt.Errorf("csv: %w", err))
			break
		}
		rows = append(rows, rec)
	}
	table(rows, o, emit, &e)
	return e.err()
}

// separator picks the CSV separator the first line holds most of (',' by default).
func separator(b []byte) rune {
	line := b
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		line = b[:i]
	}
	best, n := ',', bytes.Count(line, []byte{','})
	for _, c := range []rune{';', '\t'} {
		if k := bytes.Count(line, []byte(string(c))); k > n {
			best, n = c, k
		}
	}
	return best
}
