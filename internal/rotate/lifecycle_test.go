package rotate

import (
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/lab"
	"github.com/proxyline/proxyline/internal/lifecycle/lifecycletest"
	"github.com/proxyline/proxyline/internal/proxydial"
	"github.com/proxyline/proxyline/proxy"
)

// TestLifecycle: the rotator's lifecycle (docs/lifecycle.md) on real sockets, through a lab
// SOCKS5 upstream. Serving: a CONNECT tunnel through it reaches the lab's backend after the Start
// context ended. Long work: a tunnel streaming a response spread over ten minutes; a Stop whose
// context ends first closes it and returns the context's cause.
func TestLifecycle(t *testing.T) {
	t.Parallel()
	l := startLab(t, lab.Config{SOCKS5: 1})
	list := filepath.Join(t.TempDir(), "list.txt")
	writeList(t, list, l.Candidates())
	tunnels := map[*Server]net.Conn{}
	lifecycletest.Run(t, lifecycletest.Subject[*Server]{
		New: func(t *testing.T) *Server {
			s, err := New(Config{Listen: serveOptions("127.0.0.1:0"), From: list})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		Serving: func(t *testing.T, s *Server) {
			if e, err := viaTunnel(t, s, proxy.HTTP, "", "", l); err != nil || e.Method != "GET" {
				t.Errorf("through the rotator: %+v, %v", e, err)
			}
		},
		Busy: func(t *testing.T, s *Server) {
			p := proxy.Proxy{Scheme: proxy.HTTP, Host: "127.0.0.1", Port: uint16(s.Addr().(*net.TCPAddr).Port)}
			tun, err := proxydial.Dial(context.Background(), p, "tcp", backendAddr(t, l), nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { tun.Close() })
			fmt.Fprintf(tun, "GET /slow?n=1000&d=10m HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			if _, err := tun.Read(make([]byte, 1)); err != nil { // the response has begun
				t.Fatal(err)
			}
			tunnels[s] = tun
		},
		Cut: func(t *testing.T, s *Server) {
			tun := tunnels[s]
			_ = tun.SetReadDeadline(time.Now().Add(time.Minute)) // a bound for a hang
			if _, err := io.Copy(io.Discard, tun); err != nil {
				t.Errorf("the tunnel after the cut: %v, want closed by the rotator (EOF)", err)
			}
		},
	})
}
