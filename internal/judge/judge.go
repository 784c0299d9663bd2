// Package judge is proxyline's proxy judge: an HTTP handler that answers every GET or HEAD with a
// JSON page describing the request as it arrived (the caller's address, method, host, URI and
// headers, plus the token the caller sent). A checker fetches the judge through a proxy and learns
// from the page whether the proxy forwarded faithfully (the token came back), which address the
// judge saw (the exit IP) and what the proxy added to the headers (its anonymity).
//
// The field names of Response are a contract with internal/check: fields may be added, never
// renamed or removed.
package judge

import (
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
)

// Name is the value of Response.Judge: a checker rejects pages that lack it.
const Name = "proxyline"

// TokenParam is the query parameter carrying the caller's token; TokenHeader is the header used
// when the query has none.
const (
	TokenParam  = "t"
	TokenHeader = "X-Proxyline-Token"
)

// Response is the judge page. Both the judge and the checker use it, to encode and to decode.
type Response struct {
	Judge      string      `json:"judge"`       // always Name
	Token      string      `json:"token"`       // the t query parameter, else the X-Proxyline-Token header, else ""
	RemoteIP   string      `json:"remote_ip"`   // the address the request came from, without port
	RemoteAddr string      `json:"remote_addr"` // the same with the port
	Method     string      `json:"method"`      // GET or HEAD
	Host       string      `json:"host"`        // the Host header as received
	URI        string      `json:"uri"`         // the request URI as received
	Headers    http.Header `json:"headers"`     // the request headers as received, canonical names
}

// Handler returns the judge. Any path answers; methods other than GET and HEAD get 405. log
// receives one debug line per request; nil means no logging.
func Handler(log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &handler{log: log}
}

type handler struct {
	log *slog.Logger
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "judge: only GET and HEAD", http.StatusMethodNotAllowed)
		return
	}
	resp := Build(r)
	body, err := json.Marshal(resp)
	if err != nil { // cannot happen for strings and headers; answer rather than hang up
		http.Error(w, "judge: encode page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	body = append(body, '\n')
	h.log.Debug("judge request", "remote", r.RemoteAddr, "method", r.Method, "uri", r.RequestURI, "token", resp.Token)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(body) // the client hung up: nothing to do
	}
}

// Build returns the judge page for r: what Handler encodes.
func Build(r *http.Request) Response {
	token := r.URL.Query().Get(TokenParam)
	if token == "" {
		token = r.Header.Get(TokenHeader)
	}
	ip := r.RemoteAddr
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		ip = host
	}
	headers := r.Header.Clone()
	if headers == nil {
		headers = http.Header{}
	}
	return Response{
		Judge:      Name,
		Token:      token,
		RemoteIP:   ip,
		RemoteAddr: r.RemoteAddr,
		Method:     r.Method,
		Host:       r.Host,
		URI:        r.RequestURI,
		Headers:    headers,
	}
}
