package proctab

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// statLine formats a stat line the way the kernel does (52 fields).
func statLine(p Proc) string {
	f := make([]string, 52)
	for i := range f {
		f[i] = "0"
	}
	f[0] = fmt.Sprint(p.PID)
	f[1] = "(" + p.Comm + ")"
	f[2] = string([]byte{p.State})
	f[3] = fmt.Sprint(p.PPID)
	f[4] = fmt.Sprint(p.PGID)
	f[5] = fmt.Sprint(p.SID)
	f[8] = fmt.Sprint(p.Flags)
	f[13] = fmt.Sprint(p.UTime)
	f[14] = fmt.Sprint(p.STime)
	f[19] = fmt.Sprint(p.Threads)
	f[21] = fmt.Sprint(p.StartTime)
	f[23] = fmt.Sprint(p.RSSPages)
	return strings.Join(f, " ") + "\n"
}

func TestParseStat(t *testing.T) {
	t.Parallel()
	base := Proc{PID: 42, PPID: 1, PGID: 42, SID: 42, State: 'S', Flags: 0x00400140, StartTime: 123456, Threads: 3, RSSPages: 512, UTime: 7, STime: 9}
	tests := []struct {
		name string
		comm string
	}{
		{"plain", "sleep"},
		{"spaces", "my worker"},
		{"parens", "a) (b"},
		{"closing paren last", "x)"},
		{"empty", ""},
		{"fifteen bytes", "abcdefghijklmno"},
		{"looks like fields", ") S 1 2 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			want := base
			want.Comm = tt.comm
			got, err := ParseStat([]byte(statLine(want)))
			if err != nil {
				t.Fatalf("ParseStat: %v", err)
			}
			if got != want {
				t.Fatalf("ParseStat =\n %+v\nwant\n %+v", got, want)
			}
		})
	}
}

func TestParseStatErrors(t *testing.T) {
	t.Parallel()
	good := statLine(Proc{PID: 1, Comm: "init", State: 'S'})
	tests := []struct {
		name, line string
	}{
		{"empty", ""},
		{"no paren", "1 init S 0"},
		{"no pid", "(init) S 0 1 1"},
		{"bad pid", "x1 (init) S 0"},
		{"truncated", "1 (init) S 0 1 1 0"},
		{"bad number", strings.Replace(good, " S 0 ", " S x ", 1)},
		{"long state", strings.Replace(good, " S ", " SS ", 1)},
		{"state not a letter", strings.Replace(good, " S ", " 1 ", 1)},
		{"double space", strings.Replace(good, " S ", " S  ", 1)},
		{"overflow", strings.Replace(good, " S 0 ", " S 99999999999999999999 ", 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := ParseStat([]byte(tt.line)); !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseStat(%q) error = %v, want ErrMalformed", tt.line, err)
			}
		})
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte(statLine(Proc{PID: 7, Comm: "a) (b", State: 'R', StartTime: 99})))
	f.Add([]byte("1 (init) S 0 1 1 0 -1 4194560 0 0 0 0 1 2 0 0 20 0 1 0 5 0 3 18446744073709551615\n"))
	f.Add([]byte("1 ())) Z"))
	f.Add([]byte("-1 (x) S"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseStat(b)
		if err != nil {
			return
		}
		if p.PID <= 0 {
			t.Fatalf("parsed pid %d from %q", p.PID, b)
		}
		// Whatever parses must survive a round trip through the kernel's format.
		again, err := ParseStat([]byte(statLine(p)))
		if err != nil {
			t.Fatalf("round trip of %+v: %v", p, err)
		}
		if again != p {
			t.Fatalf("round trip: %+v != %+v", again, p)
		}
	})
}

// dirent encodes one linux_dirent64 record.
func dirent(name string) []byte {
	reclen := (19 + len(name) + 1 + 7) &^ 7
	b := make([]byte, reclen)
	b[16], b[17] = byte(reclen), byte(reclen>>8) // little-endian, as on amd64 and arm64
	copy(b[19:], name)
	return b
}

func TestAppendPIDs(t *testing.T) {
	t.Parallel()
	var buf []byte
	for _, n := range []string{".", "..", "1", "self", "42", "0", "007", "sys", "4194304"} {
		buf = append(buf, dirent(n)...)
	}
	got := appendPIDs(nil, buf)
	if want := []int{1, 42, 4194304}; !slices.Equal(got, want) {
		t.Fatalf("appendPIDs = %v, want %v", got, want)
	}
}

func FuzzAppendPIDs(f *testing.F) {
	f.Add(append(dirent("1"), dirent("self")...))
	f.Add(dirent("123")[:10])
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, pid := range appendPIDs(nil, b) {
			if pid <= 0 {
				t.Fatalf("pid %d from %q", pid, b)
			}
		}
	})
}

// TestSnapshotAllocs: the 10 Hz path must not allocate per process (only the directory open).
func TestSnapshotAllocs(t *testing.T) {
	r := NewReader()
	snap, err := r.Snapshot(nil)
	if err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(20, func() {
		snap, err = r.Snapshot(snap)
		if err != nil {
			t.Fatal(err)
		}
	})
	// New comms (processes started meanwhile on this busy machine) may add a few.
	if limit := 2 + float64(len(snap))/50; allocs > limit {
		t.Fatalf("Snapshot of %d processes: %.1f allocations per run, want ≤ %.0f", len(snap), allocs, limit)
	}
}
