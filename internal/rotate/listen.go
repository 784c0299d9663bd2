package rotate

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// socks5Version is the first byte of a SOCKS5 greeting: how the main listener tells SOCKS5 from
// HTTP (whose requests start with a method's letter).
const socks5Version = 0x05

// listen binds the listeners by the serve rule, then starts the HTTP server and accept loops.
func (s *Server) listen() error {
	ln, err := s.gate.Listen()
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.listeners = append(s.listeners, ln)
	s.mu.Unlock()
	var socksLn net.Listener
	if s.socksGate != nil {
		if socksLn, err = s.socksGate.Listen(); err != nil {
			return err
		}
		s.mu.Lock()
		s.listeners = append(s.listeners, socksLn)
		s.mu.Unlock()
	}
	s.queue = &connQueue{ch: make(chan net.Conn), done: make(chan struct{}), addr: ln.Addr()}
	s.httpSrv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: s.cfg.HeaderTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    s.cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	sem := make(chan struct{}, s.cfg.MaxConns)
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		_ = s.httpSrv.Serve(s.queue) // ErrServerClosed after Shutdown
	}()
	go s.acceptLoop(ln, sem, false)
	if socksLn != nil {
		s.wg.Add(1)
		go s.acceptLoop(socksLn, sem, true)
	}
	return nil
}

// acceptLoop accepts until ln closes, at most MaxConns inbound connections open at once.
func (s *Server) acceptLoop(ln net.Listener, sem chan struct{}, socksOnly bool) {
	defer s.wg.Done()
	for {
		select {
		case sem <- struct{}{}:
		case <-s.queue.done:
			return
		}
		c, err := ln.Accept()
		if err != nil {
			<-sem
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors or a similar passing failure: back off and retry, as
			// net/http does.
			s.log.Warn("rotator accept", "err", err)
			select {
			case <-time.After(10 * time.Millisecond):
			case <-s.queue.done:
				return
			}
			continue
		}
		tc := &trackedConn{Conn: c, release: func() { <-sem }}
		if !s.track(tc, false) {
			_ = tc.Close()
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveConn(tc, socksOnly)
		}()
	}
}

// serveConn reads the first byte: SOCKS5 is served here, anything else goes to the HTTP server.
func (s *Server) serveConn(c *trackedConn, socksOnly bool) {
	_ = c.SetReadDeadline(time.Now().Add(s.cfg.HeaderTimeout))
	if n, _ := c.Conn.Read(c.first[:]); n == 0 {
		s.untrack(c)
		_ = c.Close()
		return
	}
	c.hasFirst = true
	if c.first[0] == socks5Version {
		s.setBusy(c)
		s.serveSOCKS(c)
		s.untrack(c)
		_ = c.Close()
		return
	}
	s.untrack(c)
	if socksOnly {
		_ = c.Close()
		return
	}
	_ = c.SetReadDeadline(time.Time{}) // the HTTP server sets its own
	s.queue.push(c)
}

// track registers an inbound connection served outside the HTTP server (busy: a request is in
// progress, so Stop lets it finish). It returns false once the server stopped accepting and c is
// not busy, and always once the drain ended.
func (s *Server) track(c *trackedConn, busy bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.forced || s.stopping && !busy {
		return false
	}
	s.conns[c] = busy
	return true
}

func (s *Server) setBusy(c *trackedConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.conns[c]; ok {
		s.conns[c] = true
	}
}

func (s *Server) untrack(c *trackedConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	s.idle.Broadcast()
}

// trackedConn is an inbound connection: it gives back the byte read to tell the protocols apart,
// and frees its slot of MaxConns when closed.
type trackedConn struct {
	net.Conn
	first     [1]byte
	hasFirst  bool // first not yet returned by Read; only the reading goroutine uses it
	release   func()
	closeOnce sync.Once
	peer      net.Conn // the upstream side of its tunnel, if any; guarded by Server.mu
}

func (c *trackedConn) Read(p []byte) (int, error) {
	if c.hasFirst && len(p) > 0 {
		p[0] = c.first[0]
		c.hasFirst = false
		return 1, nil
	}
	return c.Conn.Read(p)
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(c.release)
	return err
}

// CloseWrite half-closes the connection.
func (c *trackedConn) CloseWrite() error {
	if cw, ok := c.Conn.(closeWriter); ok {
		return cw.CloseWrite()
	}
	return errors.New("half-close not supported")
}

type closeWriter interface{ CloseWrite() error }

// connQueue is the listener the HTTP server accepts from: connections serveConn sniffed as HTTP.
type connQueue struct {
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
	addr net.Addr
}

func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.ch:
		return c, nil
	case <-q.done:
		return nil, net.ErrClosed
	}
}

func (q *connQueue) Close() error {
	q.once.Do(func() { close(q.done) })
	return nil
}

func (q *connQueue) Addr() net.Addr { return q.addr }

func (q *connQueue) push(c net.Conn) {
	select {
	case q.ch <- c:
	case <-q.done:
		_ = c.Close()
	}
}
