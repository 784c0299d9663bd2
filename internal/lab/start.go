package lab

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/proxyline/proxyline/internal/judge"
)

// start builds everything in order: CA, judge, one socket per service, the address plan, the
// files, then the accept loops. Stop undoes whatever part of it ran.
func (l *Lab) start() error {
	ca, err := newAuthority()
	if err != nil {
		return err
	}
	l.ca = ca
	if err := l.startJudge(); err != nil {
		return err
	}
	if l.cfg.Backend {
		if err := l.startBackend(); err != nil {
			return err
		}
	}
	ports := map[service]uint16{}
	listeners := map[service]net.Listener{}
	for _, svc := range l.cfg.services() {
		if svc == svcRefused {
			b, err := bindRefused()
			if err != nil {
				return err
			}
			l.track(b)
			ports[svc] = b.port
			continue
		}
		ln, bound, err := listenLoopback(l.ctx)
		if err != nil {
			return fmt.Errorf("%s proxies: %w", svc, err)
		}
		if !l.track(ln) {
			return errors.New("stopped while starting")
		}
		if !bound {
			l.log.Warn("lab listener not bound to the loopback device; non-loopback connections are closed on accept",
				"service", svc, "addr", ln.Addr())
		}
		ports[svc] = uint16(ln.Addr().(*net.TCPAddr).Port)
		listeners[svc] = ln
	}
	l.plan(ports)
	if l.cfg.Dir != "" {
		if err := l.writeFiles(l.cfg.Dir); err != nil {
			return err
		}
	}
	if err := l.startSources(); err != nil {
		return err
	}
	for svc, ln := range listeners {
		var serve func(net.Conn, *entry)
		switch svc {
		case svcHTTP, svcHTTPS:
			serve = l.serveHTTP
		case svcSOCKS4, svcSOCKS4A, svcSOCKS5:
			serve = l.serveSOCKS
		case svcBlackhole:
			serve = l.serveBlackhole
		}
		l.wg.Add(1)
		go l.acceptLoop(ln, svc, serve)
	}
	l.log.Debug("lab started", "proxies", len(l.candidates), "judge", l.judgeURL, "judge_tls", l.judgeTLS, "ports", ports)
	return nil
}

// startJudge serves the judge on judgeIP, once in plain HTTP and once over TLS, HTTP/1.1 only.
func (l *Lab) startJudge() error {
	errLog := slog.NewLogLogger(l.log.Handler(), slog.LevelDebug)
	for _, useTLS := range []bool{false, true} {
		ln, err := net.Listen("tcp4", netip.AddrPortFrom(judgeIP(), 0).String())
		if err != nil {
			return fmt.Errorf("judge: %w", err)
		}
		srv := &http.Server{
			Handler:           judge.Handler(l.log),
			ReadHeaderTimeout: headTimeout,
			IdleTimeout:       time.Minute,
			ErrorLog:          errLog,
			TLSNextProto:      map[string]func(*http.Server, *tls.Conn, http.Handler){}, // no HTTP/2
		}
		url := "http://" + ln.Addr().String() + "/"
		if useTLS {
			cert, err := l.ca.leaf(judgeIP())
			if err != nil {
				_ = ln.Close()
				return fmt.Errorf("judge: %w", err)
			}
			ln = tls.NewListener(ln, &tls.Config{
				MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}, Certificates: []tls.Certificate{*cert},
			})
			url = "https://" + ln.Addr().String() + "/"
			l.judgeTLS = url
		} else {
			l.judgeURL = url
		}
		if !l.track(srv) {
			_ = ln.Close()
			return errors.New("stopped while starting")
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				l.log.Error("lab judge stopped", "url", url, "err", err)
			}
		}()
	}
	return nil
}
