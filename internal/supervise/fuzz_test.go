package supervise

import (
	"testing"
	"time"
)

func TestParseCookie(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want Cookie
		ok   bool
	}{
		{"123:456:worker-1", Cookie{123, 456, "worker-1"}, true},
		{"1:0:a.b_c-d", Cookie{1, 0, "a.b_c-d"}, true},
		{"", Cookie{}, false},
		{"123:456", Cookie{}, false},
		{"123:456:a:b", Cookie{}, false},
		{"0:456:x", Cookie{}, false},
		{"-1:456:x", Cookie{}, false},
		{"+1:456:x", Cookie{}, false},
		{"1:-4:x", Cookie{}, false},
		{"1:4:", Cookie{}, false},
		{"1:4:has space", Cookie{}, false},
		{"x:4:t", Cookie{}, false},
	}
	for _, tt := range tests {
		got, err := ParseCookie(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseCookie(%q) = %+v, %v; want %+v ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func FuzzParseCookie(f *testing.F) {
	for _, s := range []string{"123:456:worker-1", "1:0:x", "", "::", "1:2:3:4", "99999999999999999999:1:x", "1:1:" + string(make([]byte, 200))} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCookie(s)
		if err != nil {
			return
		}
		// A parsed cookie formats back to itself and parses again to the same value.
		if c.String() != s {
			t.Fatalf("ParseCookie(%q).String() = %q", s, c.String())
		}
		if c2, err := ParseCookie(c.String()); err != nil || c2 != c {
			t.Fatalf("round trip of %q: %+v, %v", s, c2, err)
		}
	})
}

func FuzzParseInitStatus(f *testing.F) {
	for _, s := range []string{"exit 0 0\n", "exit -1 9\n", "exit 3 0", "exit", "exit 1 2 3\n", "exit 256 0\n", "exit -1 9 deadline\n", "exit 0 0 late\n", "junk"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		st, err := parseInitStatus(s)
		if err != nil {
			return
		}
		if st.code < -1 || st.code > 255 || st.signal < 0 || st.signal > 64 {
			t.Fatalf("out of range: %+v from %q", st, s)
		}
		if st2, err := parseInitStatus(st.String()); err != nil || st2 != st {
			t.Fatalf("round trip of %+v: %+v, %v", st, st2, err)
		}
	})
}

func FuzzParseOwnerDir(f *testing.F) {
	for _, s := range []string{"worker.123.456", "a.b.1.2", "x.0.1", "...", "x.1", "proxyline.99.18446744073709551615"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		pid, start, ok := parseOwnerDir(s)
		if !ok {
			return
		}
		if pid <= 0 {
			t.Fatalf("pid %d from %q", pid, s)
		}
		if name := s[:len(s)-len(ownerDirName("", pid, start))]; ownerDirName(name, pid, start) != s {
			// Formatting may normalise numbers ("007"); parsing the normal form must agree.
			if p2, s2, ok := parseOwnerDir(ownerDirName("n", pid, start)); !ok || p2 != pid || s2 != start {
				t.Fatalf("round trip of %q", s)
			}
		}
	})
}

func FuzzParseInitDeadline(f *testing.F) {
	for _, s := range []string{"1500 250", "1 0", "0 0", "01 1", "1099511627777 0", "1 2 3", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseInitDeadline(s)
		if err != nil {
			return
		}
		if d.after <= 0 || d.grace < 0 || d.after > maxDeadlineMS*time.Millisecond || d.grace > maxDeadlineMS*time.Millisecond {
			t.Fatalf("out of range: %+v from %q", d, s)
		}
		if d.String() != s {
			t.Fatalf("not canonical: %q parsed as %+v", s, d)
		}
	})
}
