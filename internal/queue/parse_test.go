package queue

import (
	"testing"
)

func TestRebind(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"SELECT 1", "SELECT 1"},
		{"a = ? AND b = ?", "a = $1 AND b = $2"},
		{"x = '?' AND y = ?", "x = '?' AND y = $1"},
		{"x = 'it''s?' AND y = ?", "x = 'it''s?' AND y = $1"},
	}
	for _, tt := range tests {
		if got := rebind(tt.in); got != tt.want {
			t.Errorf("rebind(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseIdentity(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want Identity
		ok   bool
	}{
		{"host/4026531836/12/345", Identity{"host", 4026531836, 12, 345}, true},
		{"a.b-c/1/1/0", Identity{"a.b-c", 1, 1, 0}, true},
		{"host/12/345", Identity{}, false}, // the earlier format, without the pid namespace
		{"host/0/1/2", Identity{}, false},
		{"host/01/1/2", Identity{}, false},
		{"host/1/0/1", Identity{}, false},
		{"host/1/x/1", Identity{}, false},
		{"host/1/1/-1", Identity{}, false},
		{"host/1/+1/1", Identity{}, false},
		{"host/1/1/01", Identity{}, false},
		{"/1/1/2", Identity{}, false},
		{"a/b/1/1/2", Identity{}, false},
		{"river_client_abc", Identity{}, false},
		{"", Identity{}, false},
	}
	for _, tt := range tests {
		got, err := ParseIdentity(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseIdentity(%q) = %v, %v; want %v ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func FuzzParseIdentity(f *testing.F) {
	for _, s := range []string{"host/4026531836/12/345", "host/12/345", "a/b/c/d", "///", "h/1/2/3/4", "h/1/99999999999999999999/1", "h/0/1/1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseIdentity(s)
		if err != nil {
			return
		}
		// What parses prints back to itself, and parses to the same again.
		if id.String() != s || id.PID <= 0 || id.PIDNS == 0 {
			t.Fatalf("%q -> %+v -> %q", s, id, id.String())
		}
		again, err := ParseIdentity(id.String())
		if err != nil || again != id {
			t.Fatalf("%q -> %v -> %q -> %v, %v", s, id, id.String(), again, err)
		}
	})
}

func FuzzRebind(f *testing.F) {
	for _, s := range []string{"a = ?", "'?'", "''?''", "?'?'?"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := rebind(s)
		// Outside quotes no '?' is left; inside quotes nothing changes.
		quoted := false
		for i := 0; i < len(out); i++ {
			switch out[i] {
			case '\'':
				quoted = !quoted
			case '?':
				if !quoted {
					t.Fatalf("rebind(%q) = %q leaves a placeholder", s, out)
				}
			}
		}
	})
}
