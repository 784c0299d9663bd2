package lab

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/judge"
	"github.com/proxyline/proxyline/internal/testkit"
	"github.com/proxyline/proxyline/proxy"
)

func TestMain(m *testing.M) {
	testkit.Main(m)
}

func startLab(t testing.TB, cfg Config) *Lab {
	t.Helper()
	l, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { stopLab(t, l) })
	return l
}

// stopLab stops l and fails the test if it does not stop.
func stopLab(t testing.TB, l *Lab) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := l.Stop(ctx); err != nil {
		t.Errorf("stop lab: %v", err)
	}
}

// countFDs returns the number of open file descriptors of this process.
func countFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("read /proc/self/fd: %v", err)
	}
	return len(ents)
}

// anonymityOf judges a page as a checker would: our address is 127.0.0.1.
func anonymityOf(page judge.Response) string {
	xff := page.Headers.Get("X-Forwarded-For")
	switch {
	case slices.Contains(strings.Split(strings.ReplaceAll(xff, " ", ""), ","), "127.0.0.1"):
		return "transparent"
	case xff != "" || page.Headers.Get("Via") != "":
		return "anonymous"
	}
	return "elite"
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout())
}

// smallConfig has every kind, two of each.
func smallConfig() Config {
	return Config{HTTP: 2, HTTPAuth: 2, HTTPS: 2, SOCKS4: 2, SOCKS4A: 2, SOCKS5: 2, SOCKS5Auth: 2,
		Transparent: 2, Anonymous: 2, Refused: 2, Blackhole: 2, Slow: 2, SlowDelay: 300 * time.Millisecond,
		Liar: 2, Alter: 2, Bare: 2}
}

// TestKindsBehaveAsDeclared fetches the judge through every candidate, every way its protocol
// allows, and checks the outcome against Truth.
func TestKindsBehaveAsDeclared(t *testing.T) {
	t.Parallel()
	l := startLab(t, smallConfig())
	ctx := context.Background()
	for i, tr := range l.Truth() {
		t.Run(fmt.Sprintf("%s-%d", tr.Kind, i), func(t *testing.T) {
			t.Parallel()
			token := "tok-" + strconv.Itoa(i)
			base := fetch{proxy: tr.Proxy, scheme: tr.Scheme, judgeURL: l.JudgeURL(), caPool: l.CAPool(), token: token}
			type way struct {
				name    string
				f       fetch
				viaTLS  bool // through a TLS tunnel no proxy can add headers
				headers bool // the proxy can rewrite the request (absolute-URI GET or plain tunnel)
			}
			var ways []way
			switch tr.Scheme {
			case proxy.HTTP, proxy.HTTPS:
				get, con, conTLS := base, base, base
				con.connect = true
				conTLS.connect, conTLS.judgeURL = true, l.JudgeTLSURL()
				ways = []way{{"get", get, false, true}, {"connect", con, false, true}, {"connect-tls", conTLS, true, false}}
			case proxy.SOCKS4:
				tlsJ := base
				tlsJ.judgeURL = l.JudgeTLSURL()
				ways = []way{{"ip", base, false, true}, {"tls", tlsJ, true, false}}
			case proxy.SOCKS4A, proxy.SOCKS5:
				dns, tlsJ := base, base
				dns.socksDNS = true
				tlsJ.judgeURL = l.JudgeTLSURL()
				ways = []way{{"ip", base, false, true}, {"dns", dns, false, true}, {"tls", tlsJ, true, false}}
			}
			if tr.Class == ClassTimeout {
				ways = nil // only the short timeout below
			}
			for _, w := range ways {
				start := time.Now()
				page, err := w.f.do(ctx)
				took := time.Since(start)
				switch tr.Class {
				case ClassAlive:
					if err != nil {
						t.Fatalf("%s: %v", w.name, err)
					}
					if page.Token != token || page.RemoteIP != tr.ExitIP || page.Judge != judge.Name {
						t.Fatalf("%s: page token %q remote %q judge %q, want %q %q", w.name, page.Token, page.RemoteIP, page.Judge, token, tr.ExitIP)
					}
					want := tr.Anonymity
					if w.viaTLS {
						want = "elite"
					}
					if got := anonymityOf(page); got != want {
						t.Fatalf("%s: anonymity %s, want %s (headers %v)", w.name, got, want, page.Headers)
					}
					if want == "elite" && (len(page.Headers) != 1 || page.Headers.Get("User-Agent") != "labtest") {
						t.Fatalf("%s: elite proxy changed the headers: %v", w.name, page.Headers)
					}
					if took < tr.Delay {
						t.Fatalf("%s: answered after %v, before its delay %v", w.name, took, tr.Delay)
					}
				case ClassRefused:
					if !errors.Is(err, syscall.ECONNREFUSED) {
						t.Fatalf("%s: err %v, want connection refused", w.name, err)
					}
				case ClassMismatch:
					if w.viaTLS {
						if err == nil {
							t.Fatalf("%s: TLS through a %s succeeded", w.name, tr.Kind)
						}
						continue
					}
					if err != nil {
						t.Fatalf("%s: %v", w.name, err)
					}
					if page.Token == token {
						t.Fatalf("%s: %s returned the right token", w.name, tr.Kind)
					}
				default:
					t.Fatalf("unknown class %q", tr.Class)
				}
			}
			if tr.Class == ClassTimeout || tr.Kind == KindSlow {
				short := base
				short.timeout = 150 * time.Millisecond
				if _, err := short.do(ctx); !isTimeout(err) {
					t.Fatalf("with a %v timeout: err %v, want a timeout", short.timeout, err)
				}
			}
		})
	}
}

func TestTruthMatchesConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
		want map[string]int
	}{
		{"zero value is the default mix", Config{}, map[string]int{
			KindHTTP: 5, KindHTTPAuth: 5, KindHTTPS: 5, KindSOCKS4: 5, KindSOCKS4A: 5, KindSOCKS5: 5, KindSOCKS5Auth: 5,
			KindTransparent: 5, KindAnonymous: 5, KindRefused: 5, KindBlackhole: 5, KindSlow: 5, KindLiar: 5, KindAlter: 5, KindBare: 5}},
		{"only what is asked", Config{HTTP: 3, Refused: 1, Bare: 4}, map[string]int{KindHTTP: 3, KindRefused: 1, KindBare: 4}},
		{"a /24 boundary", Config{SOCKS5: 600}, map[string]int{KindSOCKS5: 600}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := startLab(t, tt.cfg)
			got := map[string]int{}
			seen := map[string]bool{}
			cands := l.Candidates()
			for i, tr := range l.Truth() {
				got[tr.Kind]++
				if tr.Proxy != cands[i] {
					t.Fatalf("truth %d is %v, candidate is %v", i, tr.Proxy, cands[i])
				}
				ip, err := netip.ParseAddr(tr.Proxy.Host)
				if err != nil || !isLoopback4(ip) || ip == netip.MustParseAddr("127.0.0.1") || ip == judgeIP() {
					t.Fatalf("candidate %v: address not a lab address", tr.Proxy)
				}
				if b := ip.As4()[3]; b == 0 || b == 255 {
					t.Fatalf("candidate %v: host octet %d", tr.Proxy, b)
				}
				if seen[tr.Proxy.Host] {
					t.Fatalf("address %s used twice", tr.Proxy.Host)
				}
				seen[tr.Proxy.Host] = true
				if (tr.Kind == KindBare) != (tr.Proxy.Scheme == proxy.Unknown) {
					t.Fatalf("candidate %v of kind %s: scheme %q", tr.Proxy, tr.Kind, tr.Proxy.Scheme)
				}
				if tr.Alive != (tr.Class == ClassAlive) || tr.Alive != (tr.ExitIP == tr.Proxy.Host) {
					t.Fatalf("truth %+v is inconsistent", tr)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("kinds %v, want %v", got, tt.want)
			}
			if fmt.Sprint(l.Counts()) != fmt.Sprint(tt.want) {
				t.Fatalf("Counts %v, want %v", l.Counts(), tt.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cfg  Config
		want string // "" for valid
	}{
		{Config{}, ""},
		{Config{HTTP: -1}, "http count -1"},
		{Config{SOCKS5Auth: -2}, "socks5_auth count -2"},
		{Config{SlowDelay: -time.Second}, "slow delay"},
		{Config{Refused: MaxProxies + 1}, "maximum"},
		{Config{Hosts: map[string]netip.Addr{"ipinfo.io": netip.MustParseAddr("127.0.0.2")}}, ""},
		{Config{Hosts: map[string]netip.Addr{"ipinfo.io": netip.MustParseAddr("10.0.0.1")}}, "not a loopback address"},
		{Config{Hosts: map[string]netip.Addr{"ipinfo.io": {}}}, "not a loopback address"},
		{Config{Hosts: map[string]netip.Addr{"a:80": netip.MustParseAddr("127.0.0.2")}}, "not a host name"},
		{Config{Hosts: map[string]netip.Addr{".": netip.MustParseAddr("127.0.0.2")}}, "not a host name"},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		if (err == nil) != (tt.want == "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("Validate(%+v) = %v, want %q", tt.cfg, err, tt.want)
		}
		l, err := Start(context.Background(), tt.cfg)
		if err == nil {
			stopLab(t, l)
		}
		if (err == nil) != (tt.want == "") {
			t.Errorf("Start(%+v): %v, want error %q", tt.cfg, err, tt.want)
		}
	}
}

// firstOf returns the truth of the first proxy of kind.
func firstOf(t *testing.T, l *Lab, kind string) Truth {
	t.Helper()
	for _, tr := range l.Truth() {
		if tr.Kind == kind {
			return tr
		}
	}
	t.Fatalf("no %s proxy", kind)
	return Truth{}
}

// rawExchange sends msg to addr and returns everything the server answers until it closes.
func rawExchange(t *testing.T, addr string, msg []byte) []byte {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(msg); err != nil {
		t.Fatalf("write %s: %v", addr, err)
	}
	b, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read %s: %v", addr, err)
	}
	return b
}

func TestAuthRejectsWrongCredentials(t *testing.T) {
	t.Parallel()
	l := startLab(t, Config{HTTPAuth: 1, SOCKS5Auth: 1})
	ctx := context.Background()
	h, s := firstOf(t, l, KindHTTPAuth), firstOf(t, l, KindSOCKS5Auth)
	judgeHost := strings.TrimSuffix(strings.TrimPrefix(l.JudgeURL(), "http://"), "/")
	tests := []struct {
		name       string
		p          proxy.Proxy
		user, pass string
		want       string
	}{
		{"http no credentials", h.Proxy, "", "", "status 407"},
		{"http wrong password", h.Proxy, h.Proxy.User, "nope", "status 407"},
		{"http wrong user", h.Proxy, "other", h.Proxy.Password, "status 407"},
		{"socks5 wrong password", s.Proxy, s.Proxy.User, "nope", "socks5 auth status 0x1"},
		{"socks5 no auth offered", s.Proxy, "", "", "socks5 method 0xff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := tt.p
			p.User, p.Password = tt.user, tt.pass
			for _, connect := range []bool{false, true} {
				f := fetch{proxy: p, scheme: p.Scheme, judgeURL: l.JudgeURL(), token: "x", connect: connect}
				_, err := f.do(ctx)
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("connect=%v: err %v, want %q", connect, err, tt.want)
				}
			}
		})
	}
	// The 407 says how to authenticate, and the connection stays usable for the retry.
	c, err := net.Dial("tcp", h.Proxy.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	fmt.Fprintf(c, "GET http://%s/?t=a HTTP/1.1\r\nHost: %s\r\n\r\n", judgeHost, judgeHost)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusProxyAuthRequired || !strings.HasPrefix(resp.Header.Get("Proxy-Authenticate"), "Basic") {
		t.Fatalf("first answer %d %v, want 407 with Basic", resp.StatusCode, resp.Header)
	}
	fmt.Fprintf(c, "GET http://%s/?t=b HTTP/1.1\r\nHost: %s\r\nProxy-Authorization: Basic %s\r\n\r\n", judgeHost, judgeHost,
		basic(h.Proxy.User, h.Proxy.Password))
	page, err := readJudge(br, "GET")
	if err != nil || page.Token != "b" {
		t.Fatalf("retry with credentials: %v, token %q", err, page.Token)
	}
}

func basic(u, p string) string { return base64.StdEncoding.EncodeToString([]byte(u + ":" + p)) }

// A goroutine of the lab that does not end is reported by Stop when its context ends, with the
// context's cause; a later Stop returns the same result.
func TestStopReportsStuckGoroutine(t *testing.T) {
	t.Parallel()
	l, wg := fuzzLab(t)
	defer wg.Wait()
	release := make(chan struct{})
	l.wg.Add(1)
	go func() { // a handler that ignores the closed connections
		defer l.wg.Done()
		<-release
	}()
	stuck := errors.New("test deadline")
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(stuck)
	err := l.Stop(ctx)
	close(release)
	if !errors.Is(err, stuck) || !strings.Contains(err.Error(), "still running") {
		t.Errorf("Stop = %v, want an error naming running handlers and the cause", err)
	}
	if err2 := l.Stop(context.Background()); err2 == nil || err2.Error() != err.Error() {
		t.Errorf("second Stop = %v, want the first one's result", err2)
	}
}
