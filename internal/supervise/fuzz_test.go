package supervise

import (
	"strings"
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
		{"4026531836:123:456:worker-1", Cookie{4026531836, 123, 456, "worker-1"}, true},
		{"7:1:0:a.b_c-d", Cookie{7, 1, 0, "a.b_c-d"}, true},
		{"", Cookie{}, false},
		{"123:456:worker-1", Cookie{}, false}, // the earlier format, without the namespace: never ours
		{"1:123:456", Cookie{}, false},
		{"1:123:456:a:b", Cookie{}, false},
		{"0:1:456:x", Cookie{}, false},
		{"01:1:456:x", Cookie{}, false},
		{"-1:1:456:x", Cookie{}, false},
		{"18446744073709551616:1:456:x", Cookie{}, false},
		{"1:0:456:x", Cookie{}, false},
		{"1:-1:456:x", Cookie{}, false},
		{"1:+1:456:x", Cookie{}, false},
		{"1:1:-4:x", Cookie{}, false},
		{"1:1:4:", Cookie{}, false},
		{"1:1:4:has space", Cookie{}, false},
		{"1:x:4:t", Cookie{}, false},
	}
	for _, tt := range tests {
		got, err := ParseCookie(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseCookie(%q) = %+v, %v; want %+v ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func FuzzParseCookie(f *testing.F) {
	for _, s := range []string{"4026531836:123:456:worker-1", "1:1:0:x", "123:456:worker-1", "", ":::", "1:2:3:4:5",
		"1:99999999999999999999:1:x", "1:1:1:" + string(make([]byte, 200))} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCookie(s)
		if err != nil {
			return
		}
		if c.OwnerPIDNS == 0 || c.OwnerPID <= 0 {
			t.Fatalf("ParseCookie(%q) = %+v: owner namespace and pid must be positive", s, c)
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

func TestParseOwnerDir(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		inst string
		want ownerID
		ok   bool
	}{
		{"worker-0a0b0c.4026531836.123.456", "worker-0a0b0c", ownerID{4026531836, 123, 456}, true},
		{"a-000000.1.1.0", "a-000000", ownerID{1, 1, 0}, true},
		{"worker-0a0b0c.123.456", "", ownerID{}, false}, // the earlier format: never ours
		{"worker.1.123.456", "", ownerID{}, false},      // no instance suffix
		{"worker-0a0b0c.0.123.456", "", ownerID{}, false},
		{"worker-0a0b0c.1.0123.456", "", ownerID{}, false},
		{"worker-0a0b0c.1.123.456.7", "", ownerID{}, false},
		{"probe-123456", "", ownerID{}, false},
		{"worker-0a0b0c.99999999999999999999.1.1", "", ownerID{}, false},
	} {
		inst, o, ok := parseOwnerDir(tt.in)
		if ok != tt.ok || inst != tt.inst || o != tt.want {
			t.Errorf("parseOwnerDir(%q) = %q, %+v, %v; want %q, %+v, %v", tt.in, inst, o, ok, tt.inst, tt.want, tt.ok)
		}
	}
}

func FuzzParseOwnerDir(f *testing.F) {
	for _, s := range []string{"worker-0a0b0c.4026531836.123.456", "worker.123.456", "a-000000.1.1.0", "x.0.1", "...", "x.1",
		"proxyline-abcdef.1.99.18446744073709551615", "w-0a0b0c.01.1.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		inst, o, ok := parseOwnerDir(s)
		if !ok {
			return
		}
		if o.pid <= 0 || o.ns == 0 || strings.ContainsAny(inst, "./\x00") {
			t.Fatalf("parseOwnerDir(%q) = %q, %+v", s, inst, o)
		}
		// The name is canonical: formatting what was parsed gives it back.
		if got := ownerDirName(inst, o); got != s {
			t.Fatalf("parseOwnerDir(%q) = %q, %+v, which formats as %q", s, inst, o, got)
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

func FuzzParseTaskDir(f *testing.F) {
	for _, s := range []string{
		"proxyline-exec-worker-0a0b0c.4026531836.123.456.0123abcd", "proxyline-exec-a-000000.1.1.0.00000000",
		"proxyline-exec-worker-0a0b0c.123.456.0123abcd", // the earlier format: never ours
		"proxyline-exec-x.1.2.3", "proxyline-exec-worker-0a0b0c.1.0123.456.0123abcd", "proxyline-exec-w-0a0b0c.1.99999999999999999999.1.00000000",
		"proxyline-exec-w-0a0b0c.99999999999999999999.1.1.00000000", "proxyline-exec-../x-0a0b0c.1.1.1.00000000",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		o, ok := parseTaskDir(s)
		if !ok {
			return
		}
		if o.owner.pid <= 0 || o.owner.ns == 0 || strings.ContainsAny(s, "/\x00") || !strings.HasPrefix(s, TaskDirPrefix) {
			t.Fatalf("parseTaskDir(%q) = %+v", s, o)
		}
		// The name is canonical: formatting the parsed owner with the same random part gives it back.
		if got := taskDirName(o.instance, o.owner, s[len(s)-8:]); got != s {
			t.Fatalf("parseTaskDir(%q) = %+v, which formats as %q", s, o, got)
		}
	})
}
