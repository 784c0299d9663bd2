package docrun_test

import "testing"

// TestSubstitute checks that a substituted variable is written for the quoting it stands in.
func TestSubstitute(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"go run ./cmd/proxyline check", "proxyline check"},
		{"check --judge http://judge:8080/ x", `check --judge "$JUDGE" x`},
		{`check --judge "http://judge:8080/" x`, `check --judge "${JUDGE}" x`},
		{"curl 'http://127.0.0.1:8081/e?judge=http://127.0.0.2:8080/&t=5s'",
			`curl 'http://127.0.0.1:8081/e?judge='"$JUDGE"'&t=5s'`},
		{"curl -F judge=https://judge.example:8443/ u", `curl -F judge="$JUDGE_TLS" u`},
		{"curl 'http://h/api/v1/proxies/127.0.0.9:34603/history'", `curl 'http://h/api/v1/proxies/'"$PROXY_ADDR"'/history'`},
		{"ls /tmp/a '/tmp/b' \"/tmp/c\"", `ls "$T"/tmp/a ''"$T"'/tmp/b' "${T}/tmp/c"`},
		{`echo \'http://judge:8080/`, `echo \'"$JUDGE"`},
	} {
		if got := substitute(tc.in); got != tc.want {
			t.Errorf("substitute(%q)\n got %s\nwant %s", tc.in, got, tc.want)
		}
	}
}

// TestSameShape checks that an output drifting from the documented JSON is caught.
func TestSameShape(t *testing.T) {
	doc := `{"proxies": [{"proxy": "http://a:1", "total_ms": 5}], "next_cursor": ""}`
	for _, tc := range []struct {
		got string
		ok  bool
	}{
		{`{"proxies": [{"proxy": "socks5://b:2", "total_ms": 9}], "next_cursor": "x"}`, true},
		{`{"proxies": [{"proxy": "socks5://b:2"}], "next_cursor": "x"}`, false},              // a key gone
		{`{"proxies": [{"proxy": "b", "total_ms": 9, "new": 1}], "next_cursor": ""}`, false}, // an undocumented key
		{`{"proxies": [{"proxy": "b", "total_ms": "9"}], "next_cursor": ""}`, false},         // another type
		{`{"proxies": [], "next_cursor": ""}`, false},                                        // no entries
		{`{"error": "parameter limit"}`, false},                                              // an error
		{`not json`, false},
	} {
		if err := sameShape([]byte(doc), []byte(tc.got)); (err == nil) != tc.ok {
			t.Errorf("sameShape(%s): %v, want ok %v", tc.got, err, tc.ok)
		}
	}
}
