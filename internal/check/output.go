package check

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Output formats of a ResultWriter.
const (
	FormatText  = "text"  // mubeng's: one live proxy URL per line
	FormatJSONL = "jsonl" // one JSON object per result
	FormatCSV   = "csv"   // a header line, then one row per result
)

// Formats lists the output formats.
func Formats() []string { return []string{FormatText, FormatJSONL, FormatCSV} }

// ResultWriter writes Results in one of the output formats. It buffers: call Flush at the end.
// It is not safe for concurrent use (CheckAll's emit is called from one goroutine at a time).
type ResultWriter struct {
	format string
	bw     *bufio.Writer
	csv    *csv.Writer
	all    bool     // write failed results too
	extra  []string // names of extra fields, after the standard ones
	row    []string
}

// NewResultWriter returns a writer of format to w. With all, failed results are written too
// (with their class); the text format only ever holds live proxies, so all must be false there.
// extra names fields written after the standard ones (JSON keys, CSV columns), whose values each
// Write gives in the same order (the scraper adds sources and geo information this way).
func NewResultWriter(w io.Writer, format string, all bool, extra ...string) (*ResultWriter, error) {
	rw := &ResultWriter{format: format, bw: bufio.NewWriterSize(w, 32<<10), all: all, extra: extra}
	switch format {
	case FormatText:
		if all {
			return nil, fmt.Errorf("format %s lists live proxies only; use jsonl or csv to write all results", format)
		}
	case FormatJSONL:
	case FormatCSV:
		rw.csv = csv.NewWriter(rw.bw)
		if err := rw.csv.Write(append(csvHeader(), extra...)); err != nil {
			return nil, fmt.Errorf("write csv header: %w", err)
		}
	default:
		return nil, fmt.Errorf("format %q: want one of text, jsonl, csv", format)
	}
	return rw, nil
}

func csvHeader() []string {
	return []string{"proxy", "class", "error", "exit_ip", "anonymity", "connect_ms", "total_ms", "checked_at"}
}

// resultJSON is a Result as a JSON line. Its field names match the CSV header.
type resultJSON struct {
	Proxy     string  `json:"proxy"`
	Class     Class   `json:"class"`
	Error     string  `json:"error,omitempty"`
	ExitIP    string  `json:"exit_ip,omitempty"`
	Anonymity string  `json:"anonymity,omitempty"`
	ConnectMS float64 `json:"connect_ms"`
	TotalMS   float64 `json:"total_ms"`
	CheckedAt string  `json:"checked_at"`
}

// Write writes r, or nothing when r failed and the writer is not writing all results. values
// are the extra fields' values, in the order NewResultWriter named them (missing ones are
// null/empty); JSON writes them as encoding/json does, CSV as text (fmt's %v).
func (w *ResultWriter) Write(r Result, values ...any) error {
	if !r.OK() && !w.all {
		return nil
	}
	switch w.format {
	case FormatText:
		w.bw.WriteString(r.Proxy.String())
		if err := w.bw.WriteByte('\n'); err != nil {
			return fmt.Errorf("write result: %w", err)
		}
	case FormatJSONL:
		b, err := json.Marshal(resultJSON{
			Proxy: r.Proxy.String(), Class: r.Class, Error: r.Err, ExitIP: r.ExitIP,
			Anonymity: string(r.Anonymity), ConnectMS: ms(r.Connect), TotalMS: ms(r.Total),
			CheckedAt: r.CheckedAt.UTC().Format(time.RFC3339Nano),
		})
		if err != nil {
			return fmt.Errorf("encode result for %s: %w", r.Proxy, err)
		}
		if b, err = w.appendExtraJSON(b, values); err != nil {
			return fmt.Errorf("encode result for %s: %w", r.Proxy, err)
		}
		w.bw.Write(b)
		if err := w.bw.WriteByte('\n'); err != nil {
			return fmt.Errorf("write result: %w", err)
		}
	case FormatCSV:
		w.row = append(w.row[:0], r.Proxy.String(), string(r.Class), r.Err, r.ExitIP, string(r.Anonymity),
			strconv.FormatFloat(ms(r.Connect), 'f', 3, 64), strconv.FormatFloat(ms(r.Total), 'f', 3, 64),
			r.CheckedAt.UTC().Format(time.RFC3339Nano))
		for i := range w.extra {
			v := ""
			if i < len(values) && values[i] != nil {
				v = fmt.Sprint(values[i])
			}
			w.row = append(w.row, v)
		}
		if err := w.csv.Write(w.row); err != nil {
			return fmt.Errorf("write result: %w", err)
		}
	}
	return nil
}

// WriteText writes one line of the text format: proxy, a live proxy as proxy.Proxy.String()
// wrote it (the pool stores that form). It saves parsing and formatting each line again: most of
// a plain export's CPU besides the database's. A proxy that is not one non-empty line is refused.
func (w *ResultWriter) WriteText(proxy string) error {
	if w.format != FormatText {
		return fmt.Errorf("write %q: the writer's format is %s, not text", proxy, w.format)
	}
	if proxy == "" || strings.ContainsAny(proxy, "\r\n") {
		return fmt.Errorf("write %q: not one line", proxy)
	}
	w.bw.WriteString(proxy)
	if err := w.bw.WriteByte('\n'); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	return nil
}

// appendExtraJSON adds the extra fields to an encoded JSON object.
func (w *ResultWriter) appendExtraJSON(b []byte, values []any) ([]byte, error) {
	if len(w.extra) == 0 {
		return b, nil
	}
	b = b[:len(b)-1] // the closing brace
	for i, k := range w.extra {
		var v any
		if i < len(values) {
			v = values[i]
		}
		kb, err := json.Marshal(k)
		if err != nil {
			return nil, err
		}
		vb, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		b = append(append(append(append(b, ','), kb...), ':'), vb...)
	}
	return append(b, '}'), nil
}

// Flush writes out everything buffered.
func (w *ResultWriter) Flush() error {
	if w.csv != nil {
		w.csv.Flush()
		if err := w.csv.Error(); err != nil {
			return fmt.Errorf("flush results: %w", err)
		}
	}
	if err := w.bw.Flush(); err != nil {
		return fmt.Errorf("flush results: %w", err)
	}
	return nil
}

// ms is d in milliseconds, rounded to microseconds.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
