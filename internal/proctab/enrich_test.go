package proctab

import (
	"errors"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestClassOf(t *testing.T) {
	t.Parallel()
	tests := []struct{ target, want string }{
		{"socket:[123]", ClassSocket},
		{"pipe:[9]", ClassPipe},
		{"anon_inode:[pidfd]", ClassPidfd},
		{"anon_inode:[eventpoll]", ClassAnon},
		{"anon_inode:inotify", ClassAnon},
		{"/dev/null", ClassDev},
		{"/var/log/x.log", ClassFile},
		{"/tmp/gone (deleted)", ClassOther},
		{"/memfd:x (deleted)", ClassOther},
		{"net:[4026531840]", ClassOther},
	}
	for _, tt := range tests {
		if got := ClassOf(tt.target); got != tt.want {
			t.Errorf("ClassOf(%q) = %q, want %q", tt.target, got, tt.want)
		}
	}
}

func TestFDsOfSelf(t *testing.T) {
	t.Parallel()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	fds, err := FDs(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	var got *FD
	for i := range fds {
		if fds[i].Num == int(r.Fd()) {
			got = &fds[i]
		}
	}
	if got == nil || got.Class != ClassPipe || !strings.HasPrefix(got.Target, "pipe:[") {
		t.Fatalf("fd %d of self = %+v, want a pipe; all: %v", r.Fd(), got, fds)
	}
	if !slices.IsSortedFunc(fds, func(a, b FD) int { return a.Num - b.Num }) {
		t.Fatalf("fds not sorted: %v", fds)
	}
}

func TestEnvContains(t *testing.T) {
	t.Parallel()
	b := []byte("A=1\x00KILLTEST_RUN=x\x00B=\x00")
	for kv, want := range map[string]bool{"A=1": true, "KILLTEST_RUN=x": true, "B=": true, "A=": false, "": false, "KILLTEST_RUN=": false} {
		if got := envContains(b, kv); got != want {
			t.Errorf("envContains(%q) = %v, want %v", kv, got, want)
		}
	}
}

func TestListeningTCP(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ln6, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln6.Close()
	// An established connection must not be listed.
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	port6 := ln6.Addr().(*net.TCPAddr).Port
	mine, err := SocketInodes(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for name, list := range map[string]func() ([]Socket, error){"ListeningTCP": ListeningTCP, "listeningProc": listeningProc} {
		socks, err := list()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		found := map[string]bool{}
		for _, s := range socks {
			if s.Port == port && s.Addr == "127.0.0.1" || s.Port == port6 && s.Addr == "::1" {
				if !mine[s.Inode] {
					t.Errorf("%s: listening socket %+v not among our socket inodes %v", name, s, mine)
				}
				found[s.Addr] = true
			}
			if s.Port == conn.LocalAddr().(*net.TCPAddr).Port {
				t.Errorf("%s: lists the client side of a connection: %+v", name, s)
			}
		}
		if !found["127.0.0.1"] || !found["::1"] {
			t.Errorf("%s: ports %d and %d not both in %v", name, port, port6, socks)
		}
	}
}

func BenchmarkListeningTCP(b *testing.B) {
	for b.Loop() {
		if _, err := ListeningTCP(); err != nil {
			b.Fatal(err)
		}
	}
}

func TestSocketInode(t *testing.T) {
	t.Parallel()
	for target, want := range map[string]uint64{"socket:[42]": 42, "socket:[]": 0, "pipe:[42]": 0, "socket:[42": 0, "socket:[x]": 0} {
		got, ok := SocketInode(target)
		if got != want || ok != (want != 0) {
			t.Errorf("SocketInode(%q) = %d, %v; want %d", target, got, ok, want)
		}
	}
}

func FuzzParseDiagMsg(f *testing.F) {
	msg := make([]byte, 72)
	msg[0], msg[1] = 2, tcpListen // AF_INET, LISTEN
	msg[4], msg[5] = 0x1f, 0x90   // port 8080
	copy(msg[8:], []byte{127, 0, 0, 1})
	msg[68] = 42
	f.Add(msg)
	f.Add(msg[:71])
	f.Fuzz(func(t *testing.T, b []byte) {
		s, ok := parseDiagMsg(b)
		if ok && (s.Port < 0 || s.Port > 65535 || s.Addr == "") {
			t.Fatalf("parseDiagMsg(%x) = %+v", b, s)
		}
	})
}

func TestParseDiagMsg(t *testing.T) {
	t.Parallel()
	msg := make([]byte, 72)
	msg[0], msg[1] = 2, tcpListen
	msg[4], msg[5] = 0x1f, 0x90
	copy(msg[8:], []byte{127, 0, 0, 1})
	msg[68] = 42
	s, ok := parseDiagMsg(msg)
	if !ok || s.Port != 8080 || s.Addr != "127.0.0.1" || s.Inode != 42 {
		t.Fatalf("parseDiagMsg = %+v, %v", s, ok)
	}
	msg[1] = 1 // ESTABLISHED
	if _, ok := parseDiagMsg(msg); ok {
		t.Fatal("non-LISTEN message accepted")
	}
}

func TestUID(t *testing.T) {
	if uid, err := UID(os.Getpid()); err != nil || uid != os.Geteuid() {
		t.Errorf("UID(self) = %d, %v; want %d", uid, err, os.Geteuid())
	}
	if _, err := UID(1 << 30); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("UID of no process: %v, want ErrNotExist", err)
	}
}
