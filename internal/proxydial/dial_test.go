package proxydial_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/judge"
	"github.com/proxyline/proxyline/internal/lab"
	"github.com/proxyline/proxyline/internal/proxydial"
	"github.com/proxyline/proxyline/internal/testkit"
	"github.com/proxyline/proxyline/proxy"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// fetchJudge sends a GET for the judge over c and returns the page.
func fetchJudge(t *testing.T, c net.Conn, judgeURL string) judge.Response {
	t.Helper()
	u, err := url.Parse(judgeURL)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	req, _ := http.NewRequest(http.MethodGet, judgeURL+"?t=tok", nil)
	req.Host = u.Host
	if err := req.Write(c); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var page judge.Response
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		t.Fatal(err)
	}
	return page
}

// TestDialLab dials the judge through every live kind of the lab and checks that the judge saw
// the proxy's own address; then the failures: refused, a blackhole past the deadline, missing or
// wrong credentials, a target the proxy will not reach.
func TestDialLab(t *testing.T) {
	t.Parallel()
	l, err := lab.Start(context.Background(), lab.Config{HTTP: 1, HTTPAuth: 1, HTTPS: 1, SOCKS4: 1, SOCKS4A: 1,
		SOCKS5: 1, SOCKS5Auth: 1, Refused: 2, Blackhole: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := l.Stop(context.Background()); err != nil {
			t.Errorf("stop: %v", err)
		}
	}()
	judgeAddr := mustHost(t, l.JudgeURL())
	tlsConf := &tls.Config{RootCAs: l.CAPool()}
	for _, tr := range l.Truth() {
		p := tr.Proxy
		t.Run(tr.Kind+"-"+string(tr.Scheme), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			c, err := proxydial.Dial(ctx, p, "tcp", judgeAddr, tlsConf)
			switch tr.Class {
			case lab.ClassAlive:
				if err != nil {
					t.Fatalf("dial through %s: %v", p, err)
				}
				defer c.Close()
				if page := fetchJudge(t, c, l.JudgeURL()); page.RemoteIP != tr.ExitIP || page.Token != "tok" {
					t.Errorf("judge saw %+v, want remote %s", page, tr.ExitIP)
				}
			case lab.ClassRefused:
				wantPhase(t, err, proxydial.PhaseConnect)
			case lab.ClassTimeout:
				wantPhase(t, err, proxydial.PhaseHandshake)
				if !errors.Is(err, context.DeadlineExceeded) && !isTimeout(err) {
					t.Errorf("blackhole: %v, want a timeout", err)
				}
			}
		})
	}
	t.Run("missing credentials", func(t *testing.T) {
		for _, tr := range l.Truth() {
			if tr.Kind != lab.KindHTTPAuth && tr.Kind != lab.KindSOCKS5Auth {
				continue
			}
			for _, pw := range []string{"", "wrong"} {
				p := tr.Proxy
				p.User, p.Password = "", ""
				if pw != "" {
					p.User, p.Password = "lab", pw
				}
				_, err := proxydial.Dial(context.Background(), p, "tcp", judgeAddr, nil)
				wantReply(t, err, proxydial.Auth)
			}
		}
	})
	t.Run("target refused by proxy", func(t *testing.T) {
		for _, tr := range l.Truth() {
			if tr.Kind != lab.KindHTTP && tr.Kind != lab.KindSOCKS5 && tr.Kind != lab.KindSOCKS4 {
				continue
			}
			// The lab is no open proxy: a target beyond loopback is refused before any dial.
			_, err := proxydial.Dial(context.Background(), tr.Proxy, "tcp", "192.0.2.1:80", nil)
			wantReply(t, err, proxydial.Unreachable)
			if !proxydial.TargetFault(err) {
				t.Errorf("%s: TargetFault false for %v", tr.Kind, err)
			}
		}
	})
}

func TestDialCanceled(t *testing.T) {
	t.Parallel()
	l, err := lab.Start(context.Background(), lab.Config{Blackhole: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := l.Stop(context.Background()); err != nil {
			t.Errorf("stop: %v", err)
		}
	}()
	for _, p := range l.Candidates() {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := proxydial.Dial(ctx, p, "tcp", "127.0.0.2:80", nil)
			done <- err
		}()
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) && !isTimeout(err) {
			t.Errorf("%s canceled: %v", p, err)
		}
	}
}

func TestParseTarget(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "host", "host:0", "host:99999", ":80", "[::1]:x"} {
		if _, err := proxydial.ParseTarget(s); err == nil {
			t.Errorf("ParseTarget(%q) accepted", s)
		}
	}
	tg, err := proxydial.ParseTarget("[::ffff:127.0.0.2]:443")
	if err != nil || !tg.IP.Is4() || tg.String() != "127.0.0.2:443" {
		t.Errorf("mapped address: %+v %v", tg, err)
	}
	tg, err = proxydial.ParseTarget("example.localhost:80")
	if err != nil || tg.IP.IsValid() || tg.Host != "example.localhost" {
		t.Errorf("name: %+v %v", tg, err)
	}
}

func TestDialBadScheme(t *testing.T) {
	t.Parallel()
	_, err := proxydial.Dial(context.Background(), proxy.Proxy{Host: "127.0.0.1", Port: 1}, "udp", "127.0.0.2:80", nil)
	if err == nil {
		t.Fatal("udp accepted")
	}
}

func mustHost(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

func wantPhase(t *testing.T, err error, phase proxydial.Phase) {
	t.Helper()
	var de *proxydial.Error
	if !errors.As(err, &de) || de.Phase != phase {
		t.Errorf("error %v, want phase %s", err, phase)
	}
}

func wantReply(t *testing.T, err error, kind proxydial.Kind) {
	t.Helper()
	var re *proxydial.ReplyError
	if !errors.As(err, &re) || re.Kind != kind {
		t.Errorf("error %v, want a reply of kind %s", err, kind)
	}
	wantPhase(t, err, proxydial.PhaseHandshake)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
