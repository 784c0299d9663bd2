package proctab

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestAppendChildren(t *testing.T) {
	t.Parallel()
	for in, want := range map[string][]int{
		"":            nil,
		"12 345 ":     {12, 345},
		"7\n":         {7},
		"1 x 2":       {1, 2},
		"  9   10   ": {9, 10},
	} {
		if got := appendChildren(nil, []byte(in)); !slices.Equal(got, want) {
			t.Errorf("appendChildren(%q) = %v, want %v", in, got, want)
		}
	}
	if got := appendChildren([]int{1}, []byte("2")); !slices.Equal(got, []int{1, 2}) {
		t.Errorf("appendChildren appends: got %v", got)
	}
}

func TestOwnStat(t *testing.T) {
	t.Parallel()
	own, err := OwnStat()
	if err != nil {
		t.Fatal(err)
	}
	byPID, err := Stat(os.Getpid())
	if err != nil || own.PID != os.Getpid() || own.Key() != byPID.Key() || own.PPID != os.Getppid() {
		t.Fatalf("OwnStat = %+v; Stat(self) = %+v, %v", own, byPID, err)
	}
}

// TestOwnNSpid: the test runs with a /proc of its own namespace, so the last (innermost) entry
// is our pid.
func TestOwnNSpid(t *testing.T) {
	t.Parallel()
	ns, err := OwnNSpid()
	if err != nil || len(ns) == 0 || ns[len(ns)-1] != os.Getpid() {
		t.Fatalf("OwnNSpid = %v, %v; want it to end in %d", ns, err, os.Getpid())
	}
}

func TestCheckOwnEnviron(t *testing.T) {
	t.Parallel()
	if err := CheckOwnEnviron(); err != nil {
		t.Fatal(err)
	}
}

func TestStatusUIDs(t *testing.T) {
	t.Parallel()
	uids, err := StatusUIDs(os.Getpid())
	if err != nil || !slices.Equal(uids[:2], []int{os.Getuid(), os.Geteuid()}) || len(uids) != 4 {
		t.Fatalf("StatusUIDs(self) = %v, %v; want [%d %d ...] of 4", uids, err, os.Getuid(), os.Geteuid())
	}
	_, err = StatusUIDs(1 << 30)
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "/proc/1073741824/status") {
		t.Fatalf("StatusUIDs of no process: %v, want ErrNotExist naming the path", err)
	}
}

func TestParseUIDs(t *testing.T) {
	t.Parallel()
	const path = "/proc/9/status"
	got, err := parseUIDs("Name:\tx\nUid:\t0\t1000\t0\t1000\nGid:\t5\t5\t5\t5\n", path)
	if err != nil || !slices.Equal(got, []int{0, 1000, 0, 1000}) {
		t.Errorf("parseUIDs = %v, %v", got, err)
	}
	for _, bad := range []string{"Name:\tx\n", "Uid:\t\n", "Uid:\t0\tx\t0\t0\n", "Uid:\t-1\n"} {
		if got, err := parseUIDs(bad, path); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("parseUIDs(%q) = %v, %v; want an error naming %s", bad, got, err, path)
		}
	}
}
