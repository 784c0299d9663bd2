package check

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/proxyline/proxyline/proxy"
)

func TestResultWriter(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 26, 23, 0, 0, 0, time.UTC)
	live := Result{Proxy: proxy.Proxy{Scheme: proxy.SOCKS5, Host: "127.0.0.3", Port: 1080, User: "u", Password: "p"},
		Class: Alive, ExitIP: "127.0.0.3", Anonymity: Elite, Connect: 1500 * time.Microsecond, Total: 3 * time.Millisecond, CheckedAt: at}
	dead := Result{Proxy: proxy.Proxy{Host: "127.0.0.4", Port: 8080}, Class: BadResponse,
		Err: `read judge response: malformed HTTP "x, \"y\""`, Total: time.Millisecond, CheckedAt: at}
	tests := []struct {
		format string
		all    bool
		want   string // exact output, or "" to check by decoding
		rows   int
	}{
		{format: FormatText, want: "socks5://u:p@127.0.0.3:1080\n"},
		{format: FormatJSONL, rows: 1},
		{format: FormatJSONL, all: true, rows: 2},
		{format: FormatCSV, all: true, rows: 3},
		{format: FormatCSV, rows: 2},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		w, err := NewResultWriter(&buf, tt.format, tt.all)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range []Result{live, dead} {
			if err := w.Write(r); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		out := buf.String()
		switch {
		case tt.want != "":
			if out != tt.want {
				t.Errorf("%s: %q, want %q", tt.format, out, tt.want)
			}
		case tt.format == FormatJSONL:
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != tt.rows {
				t.Fatalf("jsonl all=%v: %d lines, want %d", tt.all, len(lines), tt.rows)
			}
			var got resultJSON
			if err := json.Unmarshal([]byte(lines[0]), &got); err != nil {
				t.Fatal(err)
			}
			want := resultJSON{Proxy: "socks5://u:p@127.0.0.3:1080", Class: Alive, ExitIP: "127.0.0.3", Anonymity: "elite",
				ConnectMS: 1.5, TotalMS: 3, CheckedAt: "2026-11-26T23:00:00Z"}
			if got != want {
				t.Errorf("jsonl: %+v, want %+v", got, want)
			}
		case tt.format == FormatCSV:
			recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != tt.rows || strings.Join(recs[0], ",") != strings.Join(csvHeader(), ",") {
				t.Fatalf("csv all=%v: %q", tt.all, recs)
			}
			if tt.all && (recs[2][0] != "127.0.0.4:8080" || recs[2][1] != "bad_response" || recs[2][2] != dead.Err) {
				t.Errorf("csv dead row %q", recs[2])
			}
		}
	}
	if _, err := NewResultWriter(&bytes.Buffer{}, FormatText, true); err == nil {
		t.Error("text with all accepted")
	}
	if _, err := NewResultWriter(&bytes.Buffer{}, "xml", false); err == nil {
		t.Error("format xml accepted")
	}
}

func TestResultWriterExtra(t *testing.T) {
	t.Parallel()
	r := Result{Proxy: proxy.Proxy{Scheme: proxy.HTTP, Host: "1.2.3.4", Port: 80}, Class: Alive}
	var b bytes.Buffer
	w, err := NewResultWriter(&b, FormatJSONL, false, "sources", "country")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(r, []string{"a", "b"}, "DE"); err != nil {
		t.Fatal(err)
	}
	_ = w.Flush()
	if !strings.HasSuffix(strings.TrimSpace(b.String()), `,"sources":["a","b"],"country":"DE"}`) {
		t.Errorf("jsonl with extras: %s", b.String())
	}
	b.Reset()
	w, _ = NewResultWriter(&b, FormatCSV, false, "country")
	_ = w.Write(r, "DE")
	_ = w.Flush()
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if !strings.HasSuffix(lines[0], ",country") || !strings.HasSuffix(lines[1], ",DE") {
		t.Errorf("csv with extras: %q", lines)
	}
}

// TestWriteText: WriteText writes a line as given, refuses what is not one non-empty line (it
// would break the one-proxy-per-line format) and a writer of another format.
func TestWriteText(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	rw, err := NewResultWriter(&buf, FormatText, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := rw.WriteText("socks5://u:p@10.0.0.1:1080"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "http://10.0.0.1:80\nhttp://10.0.0.2:80", "http://10.0.0.1:80\r"} {
		if err := rw.WriteText(bad); err == nil {
			t.Errorf("WriteText(%q) accepted", bad)
		}
	}
	if err := rw.Flush(); err != nil || buf.String() != "socks5://u:p@10.0.0.1:1080\n" {
		t.Errorf("wrote %q, %v", buf.String(), err)
	}
	js, err := NewResultWriter(&buf, FormatJSONL, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := js.WriteText("http://10.0.0.1:80"); err == nil {
		t.Error("a jsonl writer wrote a text line")
	}
}
