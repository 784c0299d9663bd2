package check

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
)

// fakeProxy serves each connection with script on a loopback listener, for tests of one
// protocol exchange. It is stopped (listener closed, handlers waited for) at test cleanup.
func fakeProxy(t *testing.T, script func(c net.Conn, br *bufio.Reader)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				script(c, bufio.NewReader(c))
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// judgePage answers an HTTP request read from br the way proxyline's judge would, seen from
// remoteIP with the extra headers; tokenFn may alter the echoed token.
func judgePage(c net.Conn, br *bufio.Reader, remoteIP string, extra http.Header, tokenFn func(string) string) {
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	tok := req.URL.Query().Get("t")
	if tokenFn != nil {
		tok = tokenFn(tok)
	}
	h := req.Header.Clone()
	for k, v := range extra {
		h[k] = v
	}
	body, _ := json.Marshal(map[string]any{"judge": "proxyline", "token": tok, "remote_ip": remoteIP, "headers": h})
	writeResponse(c, 200, string(body))
}

func writeResponse(c net.Conn, status int, body string) {
	fmt.Fprintf(c, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		status, http.StatusText(status), len(body), body)
}
