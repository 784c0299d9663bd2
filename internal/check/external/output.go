package external

import (
	"regexp"

	"github.com/proxyline/proxyline/proxy"
)

// ansiRE matches terminal escape sequences (CSI such as colours, OSC such as titles, and the
// two-byte escapes) that tools print on a terminal. A regexp is enough for stripping them; the
// libraries that parse terminal streams fully are made for emulators, not for this.
var ansiRE = regexp.MustCompile(`\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])`)

// stripANSI removes terminal escape sequences.
func stripANSI(b []byte) []byte {
	if !bytesContainESC(b) {
		return b
	}
	return ansiRE.ReplaceAll(b, nil)
}

func bytesContainESC(b []byte) bool {
	for _, c := range b {
		if c == 0x1b {
			return true
		}
	}
	return false
}

// match keeps the reported proxies that were in the chunk. A report matches a proxy of the chunk
// when it is equal, or has the same address and
//   - the same scheme, or either has none (a tool that probed a bare host:port reports the
//     scheme it found, which the returned proxy then carries; one that writes host:port for a
//     scheme://host:port is also understood), and
//   - the same credentials, or none (tools may leave them out).
//
// Each proxy of the chunk is returned at most once, at the place of its first report (with the
// scheme of a later report if the first had none). Reports that match nothing are returned as
// unexpected.
func match(chunk, reported []proxy.Proxy) (live, unexpected []proxy.Proxy) {
	exact := make(map[proxy.Proxy]bool, len(chunk))
	byAddr := make(map[string][]proxy.Proxy, len(chunk))
	for _, p := range chunk {
		exact[p] = true
		byAddr[p.Key()] = append(byAddr[p.Key()], p)
	}
	at := map[proxy.Proxy]int{} // chunk proxy → its index in live
	add := func(c, r proxy.Proxy) {
		i, ok := at[c]
		switch {
		case !ok:
			at[c] = len(live)
			live = append(live, r)
		case live[i].Scheme == proxy.Unknown:
			live[i] = r // a later report gave the scheme
		}
	}
	for _, r := range reported {
		if exact[r] {
			add(r, r)
			continue
		}
		var best proxy.Proxy
		found := false
		for _, c := range byAddr[r.Key()] {
			if (r.User != "" || r.Password != "") && (r.User != c.User || r.Password != c.Password) {
				continue
			}
			if c.Scheme != r.Scheme && c.Scheme != proxy.Unknown && r.Scheme != proxy.Unknown {
				continue
			}
			if !found || c.Scheme == r.Scheme {
				best, found = c, true
			}
		}
		if !found {
			unexpected = append(unexpected, r)
			continue
		}
		got := best
		if got.Scheme == proxy.Unknown {
			got.Scheme = r.Scheme
		}
		add(best, got)
	}
	return live, unexpected
}
