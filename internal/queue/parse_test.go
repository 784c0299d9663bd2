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
		{"host/12/345", Identity{"host", 12, 345}, true},
		{"a.b-c/1/0", Identity{"a.b-c", 1, 0}, true},
		{"host/0/1", Identity{}, false},
		{"host/x/1", Identity{}, false},
		{"host/1/-1", Identity{}, false},
		{"/1/2", Identity{}, false},
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
	for _, s := range []string{"host/12/345", "a/b/c", "//", "h/1/2/3", "h/99999999999999999999/1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseIdentity(s)
		if err != nil {
			return
		}
		// What parses prints back to itself, and parses to the same again.
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
