package cli

import (
	"runtime/metrics"
	"testing"
)

// gcSettings reads the collector's GOGC percent and soft memory limit.
func gcSettings() (percent, limit uint64) {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}, {Name: "/gc/gomemlimit:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64(), s[1].Value.Uint64()
}

// TestTuneGC: serve runs its collector at serveGCPercent with serveMemoryLimit, unless GOGC or
// GOMEMLIMIT are set, and gives the previous settings back. Not parallel: the settings are the
// process's.
func TestTuneGC(t *testing.T) {
	p0, l0 := gcSettings()
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }

	restore := tuneGC(getenv)
	if p, l := gcSettings(); p != serveGCPercent || l != serveMemoryLimit {
		t.Errorf("without GOGC and GOMEMLIMIT: percent %d limit %d, want %d and %d", p, l, serveGCPercent, serveMemoryLimit)
	}
	restore()
	if p, l := gcSettings(); p != p0 || l != l0 {
		t.Errorf("after restore: percent %d limit %d, want %d and %d", p, l, p0, l0)
	}

	env["GOGC"], env["GOMEMLIMIT"] = "150", "1GiB" // the runtime applied them at start: left alone
	restore = tuneGC(getenv)
	if p, l := gcSettings(); p != p0 || l != l0 {
		t.Errorf("with GOGC and GOMEMLIMIT set: percent %d limit %d, want them untouched (%d, %d)", p, l, p0, l0)
	}
	restore()
}
