package check

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/proxyline/proxyline/proxy"
)

// Summary counts results by class, and live proxies by scheme: the line a run of checks ends
// with. It is not safe for concurrent use (CheckAll's emit is called from one goroutine at a time).
type Summary struct {
	byClass  map[Class]int
	byScheme map[proxy.Scheme]int
}

// NewSummary returns an empty summary.
func NewSummary() *Summary {
	return &Summary{byClass: map[Class]int{}, byScheme: map[proxy.Scheme]int{}}
}

// Add counts r.
func (s *Summary) Add(r Result) {
	s.byClass[r.Class]++
	if r.OK() {
		s.byScheme[r.Proxy.Scheme]++
	}
}

// Count is the number of results of class c.
func (s *Summary) Count(c Class) int { return s.byClass[c] }

// Checked is the number of finished checks (canceled ones did not finish).
func (s *Summary) Checked() int {
	n := 0
	for c, k := range s.byClass {
		if c != Canceled {
			n += k
		}
	}
	return n
}

// Line is the summary of total checks that took wall: "checked 20000 of 20000 in 10.2s: 10000
// alive (http 5000, socks5 5000); refused 5000, timeout 5000". With colour, the live count is green.
func (s *Summary) Line(total int, wall time.Duration, colour bool) string {
	var b strings.Builder
	alive := fmt.Sprintf("%d alive", s.byClass[Alive])
	if colour {
		alive = "\x1b[32m" + alive + "\x1b[0m"
	}
	fmt.Fprintf(&b, "checked %d of %d in %.2fs: %s", s.Checked(), total, wall.Seconds(), alive)
	if len(s.byScheme) > 0 {
		b.WriteString(" (" + joinCounts(s.byScheme) + ")")
	}
	dead := map[Class]int{}
	for c, k := range s.byClass {
		if c != Alive {
			dead[c] = k
		}
	}
	if len(dead) > 0 {
		b.WriteString("; " + joinCounts(dead))
	}
	return b.String()
}

// joinCounts formats a count map as "a 1, b 2", sorted by key; an empty key is "unknown".
func joinCounts[K ~string](m map[K]int) string {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	parts := make([]string, len(keys))
	for i, k := range keys {
		name := string(k)
		if name == "" {
			name = "unknown"
		}
		parts[i] = fmt.Sprintf("%s %d", name, m[k])
	}
	return strings.Join(parts, ", ")
}
