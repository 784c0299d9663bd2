package check

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
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
	all    bool // write failed results too
	row    []string
}

// NewResultWriter returns a writer of format to w. With all, failed results are written too
// (with their class); the text format only ever holds live proxies, so all must be false there.
func NewResultWriter(w io.Writer, format string, all bool) (*ResultWriter, error) {
	rw := &ResultWriter{format: format, bw: bufio.NewWriterSize(w, 32<<10), all: all}
	switch format {
	case FormatText:
		if all {
			return nil, fmt.Errorf("format %s lists live proxies only; use jsonl or csv to write all results", format)
		}
	case FormatJSONL:
	case FormatCSV:
		rw.csv = csv.NewWriter(rw.bw)
		if err := rw.csv.Write(csvHeader()); err != nil {
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

// Write writes r, or nothing when r failed and the writer is not writing all results.
func (w *ResultWriter) Write(r Result) error {
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
		w.bw.Write(b)
		if err := w.bw.WriteByte('\n'); err != nil {
			return fmt.Errorf("write result: %w", err)
		}
	case FormatCSV:
		w.row = append(w.row[:0], r.Proxy.String(), string(r.Class), r.Err, r.ExitIP, string(r.Anonymity),
			strconv.FormatFloat(ms(r.Connect), 'f', 3, 64), strconv.FormatFloat(ms(r.Total), 'f', 3, 64),
			r.CheckedAt.UTC().Format(time.RFC3339Nano))
		if err := w.csv.Write(w.row); err != nil {
			return fmt.Errorf("write result: %w", err)
		}
	}
	return nil
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
