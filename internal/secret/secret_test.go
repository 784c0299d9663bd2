package secret

import (
	"bytes"
	"errors"
	"io/fs"
	"log/slog"
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"", ""},
		{"/var/lib/proxyline.db", "/var/lib/proxyline.db"},
		{"postgres://u:s3cret@db:5432/q?sslmode=disable", "postgres://u:xxxxx@db:5432/q?sslmode=disable"},
		{"postgres://u@db/q?password=s3cret", "postgres://u@db/q?password=xxxxx"},
		{"postgres://u@db/q?sslmode=disable&password=s3cret&x=1", "postgres://u@db/q?sslmode=disable&password=xxxxx&x=1"},
		{"postgres://u@db/q?sslpassword=s3cret#frag", "postgres://u@db/q?sslpassword=xxxxx#frag"},
		{"postgres://u@db/q?PASSWORD=s3cret", "postgres://u@db/q?PASSWORD=xxxxx"},
		{"postgres://u:a@b@db/q", "postgres://u:xxxxx@db/q"}, // unescaped '@' in the password
		{"postgres://u@db/q", "postgres://u@db/q"},           // no password
		{"postgres://db/q?user=u", "postgres://db/q?user=u"}, // no secret parameter
		{"http://h:80/p?x=a@b", "http://h:80/p?x=a@b"},       // '@' after the authority
		{"socks5://bob:pw@127.0.0.4:1080", "socks5://bob:xxxxx@127.0.0.4:1080"},
		{"socks5://bob:@127.0.0.4:1080", "socks5://bob:xxxxx@127.0.0.4:1080"}, // even an empty one
		{"host=db user=u password=s3cret dbname=q", "host=db user=u password=xxxxx dbname=q"},
		{"host=db password='s3 c\\'ret' dbname=q", "host=db password=xxxxx dbname=q"},
		{"password = s3cret", "password = xxxxx"},
		{`connect to "postgres://u:s3cret@db/q": refused; retry postgres://v:other@db2/`, `connect to "postgres://u:xxxxx@db/q": refused; retry postgres://v:xxxxx@db2/`},
		{`{"database":"postgres://u@db/q?password=s3cret"}`, `{"database":"postgres://u@db/q?password=xxxxx"}`},
		{"pwd=s3cret passfile=/p", "pwd=xxxxx passfile=xxxxx"},
		{"a=b c==d ===", "a=b c==d ==="},
	}
	for _, tt := range tests {
		if got := Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestError(t *testing.T) {
	t.Parallel()
	base := &fs.PathError{Op: "open", Path: "/x", Err: fs.ErrNotExist}
	err := Error(errors.Join(errors.New("connect postgres://u:s3cret@db/q"), base))
	if strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "u:xxxxx@db") {
		t.Errorf("Error() = %q", err)
	}
	var pe *fs.PathError
	if !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &pe) {
		t.Errorf("the wrapped error is not reachable: %v", err)
	}
	if Error(nil) != nil {
		t.Error("Error(nil) != nil")
	}
}

type stringer struct{}

func (stringer) String() string { return "postgres://u:s3cret@db/q" }

// TestReplaceAttr logs secrets every way a caller might, with both handlers, and finds none.
func TestReplaceAttr(t *testing.T) {
	t.Parallel()
	for _, json := range []bool{false, true} {
		var buf bytes.Buffer
		opts := &slog.HandlerOptions{ReplaceAttr: ReplaceAttr}
		var h slog.Handler = slog.NewTextHandler(&buf, opts)
		if json {
			h = slog.NewJSONHandler(&buf, opts)
		}
		log := slog.New(h).With("database", "postgres://u@db/q?password=s3cret")
		log.Info("connect to postgres://u:s3cret@db/q failed",
			"err", errors.New("dial postgres://u:s3cret@db/q"),
			"url", stringer{},
			"any", []string{"password=s3cret"},
			slog.Group("g", "dsn", "host=db password=s3cret"),
			"plain", "nothing to hide", "n", 3)
		out := buf.String()
		if strings.Contains(out, "s3cret") {
			t.Errorf("json=%v: secret logged:\n%s", json, out)
		}
		if !strings.Contains(out, "nothing to hide") || !strings.Contains(out, "xxxxx") {
			t.Errorf("json=%v: log lost its content:\n%s", json, out)
		}
	}
}

// FuzzRedact: whatever the text, a password placed in a URL's userinfo or a password parameter
// never survives, and text without '@' or '=' is returned unchanged.
func FuzzRedact(f *testing.F) {
	f.Add("postgres://u:", "@db/q", "s3cret")
	f.Add("x ", " y", "p@ss")
	f.Add("", "", "a'b")
	f.Fuzz(func(t *testing.T, before, after, pw string) {
		if !strings.ContainsAny(before+after, "@=") && Redact(before+after) != before+after {
			t.Fatalf("Redact changed %q", before+after)
		}
		// Passwords as they appear in URLs and connection strings: no separators in them.
		if pw == "" || strings.ContainsAny(pw, "/?#@&'\"`\\ \t\r\n:=") {
			return
		}
		for _, form := range []func(string) string{
			func(pw string) string { return before + " postgres://u:" + pw + "@db/q " + after },
			func(pw string) string {
				return before + " postgres://u@db/q?sslmode=disable&password=" + pw + " " + after
			},
			func(pw string) string { return before + " host=db password=" + pw + " " + after },
			func(pw string) string { return before + " password='" + pw + "' " + after },
		} {
			if strings.Contains(form("")+Mask, pw) {
				continue // the password is not distinctive in this text
			}
			if s := form(pw); strings.Contains(Redact(s), pw) {
				t.Fatalf("Redact(%q) = %q keeps the password %q", s, Redact(s), pw)
			}
		}
	})
}
