package cli

import (
	"os/exec"
	"strings"
	"testing"
)

func TestMaskValue(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, value, want string }{
		{"DB_PASSWORD", "hunter2", "***"},
		{"api_token", "abc", "***"},
		{"AWS_SECRET_ACCESS_KEY", "x", "***"},
		{"BROKER", "redis://user:hunter2@127.0.0.1:6379/0", "redis://user:***@127.0.0.1:6379/0"},
		{"BROKER", "redis://:hunter2@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"},
		{"DSN", "host=127.0.0.1 user=postgres password=hunter2 dbname=test", "host=127.0.0.1 user=postgres password=*** dbname=test"},
		{"LIST", "a=http://u:p1@h1/ b=socks5://v:p2@h2:1080", "a=http://u:***@h1/ b=socks5://v:***@h2:1080"},
		{"PROJECT", "/home/me/Projects/x", "/home/me/Projects/x"},
		{"URL", "http://127.0.0.1:8080/", "http://127.0.0.1:8080/"},
	}
	for _, c := range cases {
		if got := maskValue(c.name, c.value); got != c.want {
			t.Errorf("maskValue(%s, %q) = %q, want %q", c.name, c.value, got, c.want)
		}
	}
}

// TestShellQuote: what a shell reads back is the string itself.
func TestShellQuote(t *testing.T) {
	t.Parallel()
	words := []string{"plain", "two words", "it's", "$HOME", "a\"b", "***", "", "x;rm -rf /", "back\\slash", "new\nline"}
	var line []string
	for _, w := range words {
		line = append(line, shellQuote(w))
	}
	got, err := exec.Command("sh", "-c", `for w in `+strings.Join(line, " ")+`; do printf '%s\0' "$w"; done`).Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Join(words, "\x00") + "\x00"; string(got) != want {
		t.Errorf("the shell read %q, want %q", got, want)
	}
}

func FuzzMaskValue(f *testing.F) {
	f.Add("BROKER", "redis://user:pw@127.0.0.1:6379/0", "pw")
	f.Add("X", "postgres://a:b@h/db?sslmode=disable", "b")
	f.Fuzz(func(t *testing.T, name, value, secret string) {
		got := maskValue(name, value)
		if len(secret) >= 4 && strings.Contains(value, "://u:"+secret+"@") && !strings.ContainsAny(secret, "/@:% \t\n") && strings.Contains(got, secret) {
			t.Fatalf("maskValue(%q, %q) = %q shows %q", name, value, got, secret)
		}
	})
}
