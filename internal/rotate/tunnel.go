package rotate

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// tunnelChunk is how much one copy step moves before the copier checks in (progress for the idle
// rule, a fresh read deadline). Between two TCP connections a step is a splice(2): the bytes never
// enter the process.
const tunnelChunk = 64 << 10

// tunnel is one CONNECT or SOCKS5 tunnel: two copiers with half-close, an idle rule and a
// lifetime.
type tunnel struct {
	s      *Server
	client net.Conn
	up     net.Conn
	u      *upstream
	last   atomic.Int64 // unix nanoseconds of the last progress in either direction
	once   sync.Once
	idle   time.Duration
}

// runTunnel passes bytes between client (whose first bytes may wait in clientBuf) and up until
// both directions end, the tunnel idles for IdleTimeout, or MaxDuration passes. The client
// connection is tracked as busy meanwhile, so Stop drains it; both are closed at the end.
func (s *Server) runTunnel(client net.Conn, clientBuf *bufio.Reader, up net.Conn, u *upstream) {
	tc, _ := client.(*trackedConn)
	if tc != nil {
		if !s.track(tc, true) { // the drain is over: no new tunnel
			_ = client.Close()
			_ = up.Close()
			return
		}
		s.setPeer(tc, up)
		defer s.untrack(tc)
	}
	open := s.tunnelsOpen.Add(1)
	defer s.tunnelsOpen.Add(-1)
	s.log.Debug("tunnel open", "upstream", u.label, "tunnels_open", open)
	t := &tunnel{s: s, client: client, up: up, u: u, idle: s.cfg.IdleTimeout}
	t.last.Store(time.Now().UnixNano())
	life := time.AfterFunc(s.cfg.MaxDuration, t.closeBoth)
	defer life.Stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		t.pipe(up, client, clientBuf, &u.bytesOut)
	}()
	t.pipe(client, up, nil, &u.bytesIn)
	<-done
	t.closeBoth()
}

func (t *tunnel) closeBoth() {
	t.once.Do(func() {
		_ = t.client.Close()
		_ = t.up.Close()
	})
}

// pipe copies src to dst. At src's end it half-closes dst, so the other direction can finish; on
// any error it closes both. A read that times out ends the tunnel only when the other direction
// made no progress either within the idle time.
func (t *tunnel) pipe(dst, src net.Conn, pre *bufio.Reader, n *atomic.Int64) {
	if pre != nil && pre.Buffered() > 0 {
		b, _ := pre.Peek(pre.Buffered())
		if _, err := dst.Write(b); err != nil {
			t.closeBoth()
			return
		}
		n.Add(int64(len(b)))
		_, _ = pre.Discard(len(b))
	}
	rdst, rsrc := unwrap(dst), unwrap(src)
	buf := t.s.buffers.Get().(*[copyBufSize]byte)
	defer t.s.buffers.Put(buf)
	for {
		_ = rsrc.SetReadDeadline(time.Now().Add(t.idle))
		k, err := io.CopyBuffer(rdst, io.LimitReader(rsrc, tunnelChunk), buf[:])
		if k > 0 {
			n.Add(k)
			t.last.Store(time.Now().UnixNano())
		}
		switch {
		case err == nil && k == tunnelChunk:
			continue
		case err == nil: // a short step without error: src reached its end
			if cw, ok := rdst.(closeWriter); !ok || cw.CloseWrite() != nil {
				t.closeBoth()
			}
			return
		case errors.Is(err, os.ErrDeadlineExceeded) && time.Since(time.Unix(0, t.last.Load())) < t.idle:
			continue // this side is quiet, the other is not
		default:
			t.closeBoth()
			return
		}
	}
}

// unwrap returns the connection under our wrappers once they hold no byte of their own, so that
// two TCP connections copy with splice(2).
func unwrap(c net.Conn) net.Conn {
	if tc, ok := c.(*trackedConn); ok && !tc.hasFirst {
		return tc.Conn
	}
	return c
}

// setPeer records the upstream side of a tracked connection's tunnel, for a forced stop.
func (s *Server) setPeer(c *trackedConn, peer net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.peer = peer
}
