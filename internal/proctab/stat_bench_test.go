package proctab

import "testing"

// statSample is a /proc/<pid>/stat line with a comm holding spaces and parentheses.
const statSample = "4242 (my (odd) worker) S 1 4242 4242 0 -1 4194560 1234 0 0 0 17 9 0 0 20 0 3 0 987654 123456789 2345 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n"

// BenchmarkParseStat measures the stat parser of the 10 Hz snapshot, with the intern table.
// It must not allocate (see TestSnapshotAllocs).
func BenchmarkParseStat(b *testing.B) {
	line := []byte(statSample)
	intern := map[string]string{}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseStat(line, intern); err != nil {
			b.Fatal(err)
		}
	}
}
