package web

import (
	"strings"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/api"
)

func TestNiceCeil(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   int64
		want float64
	}{{0, 10}, {3, 10}, {10, 10}, {11, 20}, {47, 50}, {50, 50}, {51, 100}, {199, 200}, {4999, 5000}, {12345, 20000}} {
		if got := niceCeil(tt.in); got != tt.want {
			t.Errorf("niceCeil(%d) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// TestLatencyChart: one dot per live check, one cross per failed one, round grid labels, the
// address escaped, nothing but our own markup.
func TestLatencyChart(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	h := []api.Check{ // newest first
		{CheckedAt: at.Add(2 * time.Hour), Class: "alive", TotalMS: 47},
		{CheckedAt: at.Add(time.Hour), Class: "timeout", TotalMS: 10000},
		{CheckedAt: at, Class: "alive", TotalMS: 7},
	}
	svg := string(latencyChart(`<script>1.2.3.4:80`, h))
	for _, want := range []string{`role="img"`, "&lt;script&gt;1.2.3.4:80", "2 live checks", "1 failed checks", "<polyline",
		"0 ms", "10 ms", "20 ms", "50 ms", "03:04:05", "05:04:05 UTC", "timeout"} {
		if !strings.Contains(svg, want) {
			t.Errorf("no %q in\n%s", want, svg)
		}
	}
	if n := strings.Count(svg, `<circle class="point"`); n != 2 {
		t.Errorf("%d points, want 2", n)
	}
	if n := strings.Count(svg, `<g class="fail">`); n != 1 {
		t.Errorf("%d crosses, want 1", n)
	}
	if strings.Contains(svg, "<script>") || strings.Contains(svg, "37 ms") {
		t.Errorf("unescaped text or odd labels:\n%s", svg)
	}
	if empty := string(latencyChart("x:1", nil)); !strings.Contains(empty, "No check recorded") {
		t.Errorf("empty chart: %s", empty)
	}
}
