package proxydial

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzReplies feeds arbitrary bytes to the reply parsers: they must never panic, a success must
// consume exactly the reply (header, address and port), and every failure must be either a short
// read or a *ReplyError.
func FuzzReplies(f *testing.F) {
	f.Add([]byte{5, 0, 0, 1, 127, 0, 0, 1, 0, 80})
	f.Add([]byte{5, 1, 0, 1, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{5, 0, 0, 3, 4, 'j', 'u', 'd', 'g', 0, 80, 'x'})
	f.Add([]byte{5, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 187})
	f.Add([]byte{4, 0x5A, 0, 80, 127, 0, 0, 1})
	f.Add([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 200 OK\r\n\r\n"))
	f.Add([]byte{5, 0xFF})
	f.Add([]byte{1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		err := ReadSOCKS5Reply(r)
		if err == nil {
			consumed := len(b) - r.Len()
			want := 4 + 2
			switch b[3] {
			case socks5ATYPIPv4:
				want += 4
			case socks5ATYPIPv6:
				want += 16
			case socks5ATYPDomain:
				want += 1 + int(b[4])
			}
			if consumed != want || b[0] != 5 || b[1] != 0 {
				t.Fatalf("accepted %x consuming %d bytes, want %d", b, consumed, want)
			}
		}
		checkReplyErr(t, err)
		_, err = ReadSOCKS5Method(bytes.NewReader(b))
		checkReplyErr(t, err)
		checkReplyErr(t, ReadSOCKS5AuthReply(bytes.NewReader(b)))
		err = ReadSOCKS4Reply(bytes.NewReader(b))
		if err == nil && (len(b) < 8 || b[1] != socks4Granted) {
			t.Fatalf("SOCKS4 accepted %x", b)
		}
		checkReplyErr(t, err)
		err = Connect(io.Discard, bufio.NewReader(bytes.NewReader(b)), "127.0.0.2:80", "", nil)
		if err == nil && !bytes.HasPrefix(b, []byte("HTTP/")) {
			t.Fatalf("CONNECT accepted %q", b)
		}
	})
}

// checkReplyErr fails unless err is nil, a short read, or a *ReplyError.
func checkReplyErr(t *testing.T, err error) {
	t.Helper()
	var re *ReplyError
	if err != nil && !errors.As(err, &re) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("unexpected error %v", err)
	}
}
