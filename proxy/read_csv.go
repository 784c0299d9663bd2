package proxy

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"strings"
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
func (c *collector) readCSV(br *bufio.Reader) error {
	// Look at the header line to choose the separator; csv.Reader then reads it again.
	header, consumed, err := firstLine(br)
	if err != nil {
		return err
	}
	cr := csv.NewReader(io.MultiReader(bytes.NewReader(consumed), br))
	cr.Comma = csvComma(header)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	cr.ReuseRecord = true
	cr.Comment = '#'
	return c.readCSVRecords(cr)
}

func (c *collector) readCSVRecords(cr *csv.Reader) error {
	var cols [numCols]int
	header := true
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			c.fail(pe.Line, fieldError("", "", pe.Err))
			continue
		}
		if err != nil {
			return err
		}
		line, _ := cr.FieldPos(0)
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
