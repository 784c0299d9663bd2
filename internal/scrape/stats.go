package scrape

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Source states in SourceStats.State.
const (
	StatePending   = "pending"   // not started (yet, or ever: the run was stopped first)
	StateRunning   = "running"   // being fetched
	StateOK        = "ok"        // fetched and read
	StatePartial   = "partial"   // read in part: candidates found, then an error
	StateFailed    = "failed"    // nothing usable: the error says why
	StateAbandoned = "abandoned" // in flight when the run was stopped, past the grace period
)

// SourceStats is what one source gave. Its JSON form is written by --stats.
type SourceStats struct {
	Name        string        `json:"name"`
	State       string        `json:"state"`
	Err         string        `json:"error,omitempty"`
	Format      string        `json:"format,omitempty"`       // the format read (detected for auto)
	Bytes       int64         `json:"bytes"`                  // body size, after decompression
	Attempts    int           `json:"attempts,omitempty"`     // GETs made
	NotModified bool          `json:"not_modified,omitempty"` // answered 304: the cached candidates were used
	Parsed      int           `json:"parsed"`                 // candidates extracted
	New         int           `json:"new"`                    // of which no earlier source had named
	Duplicates  int           `json:"duplicates"`             // of which an earlier source (or this one) had named
	Live        int           `json:"live"`                   // of its candidates, how many were found alive (--check)
	Started     time.Time     `json:"started"`
	Took        time.Duration `json:"took_ns"`
}

// writeTable prints the statistics as a table.
func writeTable(w io.Writer, stats []SourceStats, checked bool) {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', tabwriter.AlignRight)
	head := "source\tstate\tbytes\tparsed\tnew\tdup\ttime\t"
	if checked {
		head = "source\tstate\tbytes\tparsed\tnew\tdup\tlive\ttime\t"
	}
	fmt.Fprintln(tw, head)
	for _, s := range stats {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t", s.Name, s.State, s.Bytes, s.Parsed, s.New, s.Duplicates)
		if checked {
			fmt.Fprintf(tw, "%d\t", s.Live)
		}
		fmt.Fprintf(tw, "%s\t\n", s.Took.Round(time.Millisecond))
	}
	_ = tw.Flush()
	for _, s := range stats {
		if s.Err != "" {
			fmt.Fprintf(w, "source %s: %s\n", s.Name, s.Err)
		}
	}
}

// joinCounts formats counts as "failed 1, ok 3", sorted by key.
func joinCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}
