package proxydial

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
)

// BasicAuth returns the Proxy-Authorization value for user and pass, or "" when both are empty.
func BasicAuth(user, pass string) string {
	if user == "" && pass == "" {
		return ""
	}
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// Connect asks an HTTP proxy for a tunnel to target (host:port) with CONNECT, sending auth as
// Proxy-Authorization when it is not empty, and reads the answer from br: AppendConnect, then
// ReadConnectReply. buf is scratch space for the request.
func Connect(w io.Writer, br *bufio.Reader, target, auth string, buf []byte) error {
	if _, err := w.Write(AppendConnect(buf[:0], target, auth)); err != nil {
		return fmt.Errorf("write CONNECT: %w", err)
	}
	return ReadConnectReply(br)
}

// AppendConnect appends to b a CONNECT request for target (host:port), with auth as
// Proxy-Authorization when it is not empty. It sends nothing else: no User-Agent, nothing that
// identifies the client.
func AppendConnect(b []byte, target, auth string) []byte {
	b = append(b, "CONNECT "...)
	b = append(b, target...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, target...)
	b = append(b, "\r\n"...)
	if auth != "" {
		b = append(b, "Proxy-Authorization: "...)
		b = append(b, auth...)
		b = append(b, "\r\n"...)
	}
	return append(b, "\r\n"...)
}

// ReadConnectReply reads an HTTP proxy's answer to CONNECT from br. A 2xx answer is success; 407
// is a *ReplyError of kind Auth, any other status one of kind Unreachable (the proxy's way to say
// it could not or would not reach the target). An answer that is not HTTP is an error wrapping
// net/http's (not a *ReplyError): the caller classes it with what it knows of the read.
func ReadConnectReply(br *bufio.Reader) error {
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		return fmt.Errorf("read CONNECT response: %w", err)
	}
	// A 2xx answer to CONNECT has no body (net/http gives an empty one); a refusal's body is not
	// needed, and the connection is not used after a refusal.
	_ = resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusProxyAuthRequired:
		return replyErr(Auth, resp.StatusCode, "CONNECT: proxy answered %s", resp.Status)
	default:
		return replyErr(Unreachable, resp.StatusCode, "CONNECT: proxy answered %s", resp.Status)
	}
}
