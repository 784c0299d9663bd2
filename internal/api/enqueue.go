package api

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/proxyline/proxyline/internal/backend"
	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/proxy"
)

// enqueueParams are the parameters of POST /api/v1/enqueue, in the query string or, with a
// multipart/form-data body, as form fields.
var enqueueParams = []string{"judge", "timeout", "judge_status", "judge_keyword", "format", "chunk", "name"}

// maxBadLines is how many bad lines an answer lists (it counts them all).
const maxBadLines = 100

// maxField caps a multipart field other than the list (the judge CA PEM is one).
const maxField = 1 << 20

// Enqueued is the answer of POST /api/v1/enqueue.
type Enqueued struct {
	Jobs    int     `json:"jobs"`
	Proxies int     `json:"proxies"`
	JobIDs  []int64 `json:"job_ids"`
}

// BadLine is a line of the list that is not a proxy: where and why, without its text (which may
// hold a password).
type BadLine struct {
	Line   int    `json:"line"`
	Field  string `json:"field,omitempty"`
	Reason string `json:"reason"`
}

// enqueueRequest is a parsed enqueue: the proxies, the job options and how to cut the list.
type enqueueRequest struct {
	proxies []proxy.Proxy
	bad     []*proxy.LineError
	opts    queue.CheckOptions
	chunk   int
	name    string
}

func (s *Server) enqueue(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxEnqueueBytes)
	req, err := s.readEnqueue(r)
	if err != nil {
		return err
	}
	if len(req.bad) > 0 {
		lines := make([]BadLine, 0, min(len(req.bad), maxBadLines))
		for _, e := range req.bad[:min(len(req.bad), maxBadLines)] {
			lines = append(lines, BadLine{Line: e.Line, Field: e.Field, Reason: e.Err.Error()})
		}
		return &httpError{status: http.StatusBadRequest,
			msg:   fmt.Sprintf("%d bad %s in the list; nothing enqueued", len(req.bad), plural(len(req.bad), "line", "lines")),
			extra: map[string]any{"bad_lines": lines}}
	}
	if len(req.proxies) == 0 {
		return statusError(http.StatusBadRequest, "the list holds no proxy; nothing enqueued")
	}
	lines := make([]string, len(req.proxies))
	for i, p := range req.proxies {
		lines[i] = p.String()
	}
	ids, err := s.cfg.Store.EnqueueChecks(r.Context(), queue.Split(lines, req.name, req.chunk), req.opts)
	if err != nil {
		return fmt.Errorf("enqueue %d proxies: %w", len(lines), err)
	}
	s.cfg.Logger.Info("enqueued through the API", "jobs", len(ids), "proxies", len(lines), "name", req.name)
	writeJSON(w, http.StatusCreated, Enqueued{Jobs: len(ids), Proxies: len(lines), JobIDs: ids})
	return nil
}

// readEnqueue reads the list and the options: the body is the list (any format `proxyline
// check` reads) with the options in the query string, or a multipart/form-data body whose part
// "list" is the list and whose part "judge_ca" is a PEM CA for an HTTPS judge, the options as
// fields or in the query string.
func (s *Server) readEnqueue(r *http.Request) (*enqueueRequest, error) {
	v := r.URL.Query()
	if err := known(v, enqueueParams); err != nil {
		return nil, err
	}
	req := &enqueueRequest{}
	var ca string
	ctype, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ctype == "multipart/form-data" {
		var err error
		if ca, err = s.readMultipart(r, v, req); err != nil {
			return nil, err
		}
	} else {
		if err := s.readList(r.Body, v, req); err != nil {
			return nil, err
		}
	}
	return req, s.enqueueOptions(v, ca, req)
}

// readList reads the list from body, in the format v names.
func (s *Server) readList(body io.Reader, v url.Values, req *enqueueRequest) error {
	format, err := proxy.ParseFormat(v.Get("format"))
	if err != nil {
		return paramErr("format", "%v", err)
	}
	name, err := nameParam(v)
	if err != nil {
		return err
	}
	n := 0
	err = proxy.Scan(body, name, format, func(p proxy.Proxy) {
		if n++; n <= s.cfg.MaxEnqueueProxies {
			req.proxies = append(req.proxies, p)
		}
	}, func(e *proxy.LineError) { req.bad = append(req.bad, e) })
	if err := tooLarge(err, s.cfg.MaxEnqueueBytes); err != nil {
		return err
	}
	if err != nil {
		return statusError(http.StatusBadRequest, "read the list: "+err.Error())
	}
	if n > s.cfg.MaxEnqueueProxies {
		return statusError(http.StatusRequestEntityTooLarge,
			fmt.Sprintf("the list holds %d proxies, more than the %d one enqueue takes; split it", n, s.cfg.MaxEnqueueProxies))
	}
	req.proxies = dedupe(req.proxies)
	return nil
}

// dedupe drops repeated proxies, keeping the first (as `proxyline enqueue` reads lists).
func dedupe(ps []proxy.Proxy) []proxy.Proxy {
	seen := make(map[proxy.Proxy]struct{}, len(ps))
	out := ps[:0]
	for _, p := range ps {
		if _, ok := seen[p]; !ok {
			seen[p] = struct{}{}
			out = append(out, p)
		}
	}
	return out
}

// tooLarge turns the body cap's error into a 413 naming the cap.
func tooLarge(err error, limit int64) error {
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		return statusError(http.StatusRequestEntityTooLarge,
			fmt.Sprintf("the request body is larger than %d bytes, the most one enqueue takes; split the list", limit))
	}
	return nil
}

// readMultipart reads a multipart/form-data enqueue: the parts "list" and "judge_ca", and the
// option fields into v (a field given in the query string too is refused as ambiguous). It
// returns the CA's PEM.
func (s *Server) readMultipart(r *http.Request, v url.Values, req *enqueueRequest) (string, error) {
	mr, err := r.MultipartReader()
	if err != nil {
		return "", statusError(http.StatusBadRequest, "multipart body: "+err.Error())
	}
	var ca string
	sawList := false
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			if e := tooLarge(err, s.cfg.MaxEnqueueBytes); e != nil {
				return "", e
			}
			return "", statusError(http.StatusBadRequest, "multipart body: "+err.Error())
		}
		name := part.FormName()
		switch {
		case name == "list":
			if sawList {
				return "", paramErr("list", "given twice")
			}
			sawList = true
			// The fields that shape the reading (format, name) come before it.
			if err := s.readList(part, v, req); err != nil {
				return "", err
			}
		case name == "judge_ca" || slices.Contains(enqueueParams, name):
			b, err := io.ReadAll(io.LimitReader(part, maxField+1))
			if err := tooLarge(err, s.cfg.MaxEnqueueBytes); err != nil {
				return "", err
			}
			if err != nil || len(b) > maxField {
				return "", paramErr(name, "unreadable or longer than %d bytes", maxField)
			}
			if name == "judge_ca" {
				ca = string(b)
				continue
			}
			if v.Has(name) {
				return "", paramErr(name, "given both in the query string and in the form")
			}
			if sawList && (name == "format" || name == "name") {
				return "", paramErr(name, "must come before the list part: the list is read as it arrives")
			}
			v.Set(name, string(b))
		default:
			return "", paramErr(name, "unknown form field (this endpoint takes list, judge_ca, %s)", strings.Join(enqueueParams, ", "))
		}
	}
	if !sawList {
		return "", paramErr("list", "missing: the multipart body needs a part named list")
	}
	return ca, nil
}

// enqueueOptions reads the job options and the chunking from v, validated as `proxyline
// enqueue` validates its flags.
func (s *Server) enqueueOptions(v url.Values, ca string, req *enqueueRequest) error {
	j := check.JudgeConfig{URL: strings.TrimSpace(v.Get("judge")), Keyword: v.Get("judge_keyword"), CAPEM: ca}
	if j.URL == "" {
		return paramErr("judge", "required: the judge URL workers check through each proxy")
	}
	if err := check.ValidateJudgeURL(j.URL); err != nil {
		return paramErr("judge", "%v", err)
	}
	var timeout time.Duration
	if t := strings.TrimSpace(v.Get("timeout")); t != "" {
		d, err := time.ParseDuration(t)
		if err != nil || d <= 0 || d > time.Hour {
			return paramErr("timeout", "%q: want a duration from 1ms to 1h, such as 5s", trunc(t))
		}
		timeout = d
	}
	var err error
	if j.Status, err = intParam(v, "judge_status", 0, 100, 599); err != nil {
		return err
	}
	if err := j.Validate(); err != nil {
		return statusError(http.StatusBadRequest, "judge options: "+err.Error())
	}
	// The one judge configuration of every command (check.JudgeConfig): the CA is parsed as
	// enqueue parses --judge-ca (certificates only, re-encoded), and the job carries it.
	o, err := backend.JobOptions(j, timeout)
	if err != nil {
		return paramErr("judge_ca", "%v", err)
	}
	req.opts = o
	if req.chunk, err = intParam(v, "chunk", queue.DefaultChunk, 1, 100_000); err != nil {
		return err
	}
	req.name, err = nameParam(v)
	return err
}

// nameParam reads name, the label of the chunks' source in the queue ("api#101"): at most 100
// printable characters. Default "api".
func nameParam(v url.Values) (string, error) {
	name := strings.TrimSpace(v.Get("name"))
	if name == "" {
		return "api", nil
	}
	if len(name) > 100 || strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return "", paramErr("name", "at most 100 printable characters")
	}
	return name, nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
