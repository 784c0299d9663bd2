package proctab

import (
	"os"
	"slices"
	"strconv"
	"testing"
)

func TestParsePIDNamespaceLink(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"pid:[4026531836]", InitialPIDNamespace, true},
		{"pid:[7]", 7, true},
		{"pid:[0]", 0, false},
		{"pid:[07]", 0, false},
		{"pid:[]", 0, false},
		{"pid:[-1]", 0, false},
		{"pid:[18446744073709551616]", 0, false},
		{"net:[4026531836]", 0, false},
		{"pid:[4026531836", 0, false},
		{"pid:[4026531836] ", 0, false},
	} {
		got, err := ParsePIDNamespaceLink(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParsePIDNamespaceLink(%q) = %d, %v; want %d ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func FuzzParsePIDNamespaceLink(f *testing.F) {
	for _, s := range []string{"pid:[4026531836]", "pid:[0]", "pid:[01]", "pid:[", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ns, err := ParsePIDNamespaceLink(s)
		if err != nil {
			return
		}
		if ns == 0 || "pid:["+strconv.FormatUint(ns, 10)+"]" != s {
			t.Fatalf("ParsePIDNamespaceLink(%q) = %d: not canonical", s, ns)
		}
	})
}

func FuzzParseNSpid(f *testing.F) {
	for _, s := range []string{"Name:\tx\nNSpid:\t21465\t1\n", "NSpid:\t1\n", "NSpid:\t5\tx\n", "NSpid:", "Pid:\t1\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, pid := range ParseNSpid(s) {
			if pid <= 0 {
				t.Fatalf("ParseNSpid(%q): pid %d", s, pid)
			}
		}
	})
}

// TestOwnPIDNamespace: our namespace is readable, /proc is ours (the test never runs with a
// foreign /proc), and the namespace listing contains ours and agrees with our own process's link.
func TestOwnPIDNamespace(t *testing.T) {
	t.Parallel()
	ns, err := OwnPIDNamespace()
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckOwnProc(); err != nil {
		t.Fatal(err)
	}
	if byPID, err := PIDNamespace(os.Getpid()); err != nil || byPID != ns {
		t.Fatalf("PIDNamespace(self) = %d, %v; want %d", byPID, err, ns)
	}
	live, _, err := PIDNamespaces(ns)
	if err != nil || !live[ns] {
		t.Fatalf("PIDNamespaces: %v, %v; want ours (%d) among them", live, err, ns)
	}
}

func TestPIDs(t *testing.T) {
	t.Parallel()
	pids, err := PIDs()
	if err != nil || !slices.Contains(pids, os.Getpid()) || slices.Contains(pids, 0) {
		t.Fatalf("PIDs = %d pids, %v; want ours (%d) among them and no 0", len(pids), err, os.Getpid())
	}
}
