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
