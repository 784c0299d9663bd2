// Package history is killtest's Jepsen-style total-queue check: given the ids that were
// submitted and the results that landed, it reports which tasks were lost (submitted, no result),
// duplicated (more than one result), unexpected (a result for an id never submitted) and
// corrupted (an output whose checksum differs from the expected one), by id and as fractions.
// Parsers here read the plain formats (id lists, JSON lines, checksum files); the runner feeds
// SQL rows in through Record values.
package history

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
)

// Record is one row from a source: an id and, optionally, the task's output.
type Record struct {
	ID        string
	Output    string
	HasOutput bool
	// Where locates the record for evidence ("results.jsonl:12").
	Where string
}

// Report is the outcome of Analyze.
type Report struct {
	Submitted  int // distinct submitted ids
	Results    int // result records
	Completed  int // distinct submitted ids with at least one result
	Lost       []string
	Duplicated []Dup
	Unexpected []string
	Corrupted  []Corrupt
	// DuplicateSubmissions are ids submitted more than once (reported, not judged).
	DuplicateSubmissions []string
}

// Dup is an id with more than one result.
type Dup struct {
	ID    string
	Count int
	Where []string
}

// Corrupt is a result whose output does not match the expected checksum.
type Corrupt struct {
	ID     string
	Want   string
	Got    string // checksum of the output, or "" when the result had no output
	Where  string
	Detail string
}

// Fraction returns n / Submitted (0 when nothing was submitted).
func (r Report) Fraction(n int) float64 {
	if r.Submitted == 0 {
		return 0
	}
	return float64(n) / float64(r.Submitted)
}

// Summary is a one-line description with counts and fractions.
func (r Report) Summary() string {
	return fmt.Sprintf("%d submitted, %d completed, %d results: lost %d (%.1f%%), duplicated %d (%.1f%%), unexpected %d, corrupted %d (%.1f%%)",
		r.Submitted, r.Completed, r.Results,
		len(r.Lost), 100*r.Fraction(len(r.Lost)),
		len(r.Duplicated), 100*r.Fraction(len(r.Duplicated)),
		len(r.Unexpected),
		len(r.Corrupted), 100*r.Fraction(len(r.Corrupted)))
}

// Checksum is the checksum format of checksum files: lowercase hex SHA-256 of the output.
func Checksum(output string) string {
	sum := sha256.Sum256([]byte(output))
	return hex.EncodeToString(sum[:])
}

// Analyze compares submitted ids with results. checksums (id → expected checksum, may be nil)
// turns on the corruption check for the ids it names.
func Analyze(submitted []string, results []Record, checksums map[string]string) Report {
	var r Report
	sub := map[string]int{}
	for _, id := range submitted {
		sub[id]++
	}
	r.Submitted = len(sub)
	for id, n := range sub {
		if n > 1 {
			r.DuplicateSubmissions = append(r.DuplicateSubmissions, id)
		}
	}
	r.Results = len(results)
	byID := map[string][]Record{}
	for _, rec := range results {
		byID[rec.ID] = append(byID[rec.ID], rec)
	}
	for id := range sub {
		recs := byID[id]
		if len(recs) == 0 {
			r.Lost = append(r.Lost, id)
			continue
		}
		r.Completed++
		if len(recs) > 1 {
			d := Dup{ID: id, Count: len(recs)}
			for _, rec := range recs {
				d.Where = append(d.Where, rec.Where)
			}
			r.Duplicated = append(r.Duplicated, d)
		}
		want, ok := checksums[id]
		if !ok {
			continue
		}
		want = strings.ToLower(strings.TrimPrefix(want, "sha256:"))
		for _, rec := range recs {
			switch {
			case !rec.HasOutput:
				r.Corrupted = append(r.Corrupted, Corrupt{ID: id, Want: want, Where: rec.Where, Detail: "result has no output to verify"})
			case Checksum(rec.Output) != want:
				r.Corrupted = append(r.Corrupted, Corrupt{ID: id, Want: want, Got: Checksum(rec.Output), Where: rec.Where, Detail: "output checksum differs"})
			}
		}
	}
	for id := range byID {
		if _, ok := sub[id]; !ok {
			r.Unexpected = append(r.Unexpected, id)
		}
	}
	sort.Strings(r.Lost)
	sort.Strings(r.Unexpected)
	sort.Strings(r.DuplicateSubmissions)
	sort.Slice(r.Duplicated, func(i, j int) bool { return r.Duplicated[i].ID < r.Duplicated[j].ID })
	sort.Slice(r.Corrupted, func(i, j int) bool { return r.Corrupted[i].ID < r.Corrupted[j].ID })
	return r
}
