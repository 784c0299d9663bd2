package proxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// jsonProxy holds the keys of a JSON line that name a proxy; other keys (the result fields that
// `proxyline check -o x.jsonl` adds) are ignored. encoding/json matches keys regardless of case.
type jsonProxy struct {
	URL      json.RawMessage `json:"url"`
	Proxy    json.RawMessage `json:"proxy"`
	Scheme   json.RawMessage `json:"scheme"`
	Protocol json.RawMessage `json:"protocol"`
	Type     json.RawMessage `json:"type"`
	Host     json.RawMessage `json:"host"`
	IP       json.RawMessage `json:"ip"`
	Port     json.RawMessage `json:"port"`
	User     json.RawMessage `json:"user"`
	Username json.RawMessage `json:"username"`
	Password json.RawMessage `json:"password"`
	Pass     json.RawMessage `json:"pass"`
}

// parseJSONLine parses one JSON object: a "url" or "proxy" string in any form Parse accepts, or
// the fields scheme/protocol/type, host/ip, port (number or string), user/username and
// password/pass. When both are given, the URL wins.
func parseJSONLine(s string) (Proxy, *LineError) {
	if s[0] != '{' {
		return Proxy{}, fieldError("", s, ErrJSON)
	}
	var j jsonProxy
	if err := json.Unmarshal([]byte(s), &j); err != nil {
		return Proxy{}, fieldError("", s, fmt.Errorf("%w: %w", ErrJSON, err))
	}
	var v [6]string // url, scheme, host, port, user, password
	for i, f := range [...]struct {
		name string
		raws []json.RawMessage
	}{
		{"url", []json.RawMessage{j.URL, j.Proxy}},
		{"scheme", []json.RawMessage{j.Scheme, j.Protocol, j.Type}},
		{"host", []json.RawMessage{j.Host, j.IP}},
		{"port", []json.RawMessage{j.Port}},
		{"user", []json.RawMessage{j.User, j.Username}},
		{"password", []json.RawMessage{j.Password, j.Pass}},
	} {
		for _, raw := range f.raws {
			s, err := jsonString(f.name, raw)
			if err != nil {
				return Proxy{}, err
			}
			if s != "" {
				v[i] = s
				break
			}
		}
	}
	if v[0] != "" {
		return parse(v[0])
	}
	return build(v[1], v[2], v[3], v[4], v[5])
}

// jsonString decodes a JSON string, or, for the port only, a number. Absent and null are "".
func jsonString(field string, raw json.RawMessage) (string, *LineError) {
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return "", nil
	case raw[0] == '"' && bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw):
		return string(raw[1 : len(raw)-1]), nil // json.Unmarshal has checked the syntax
	case raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", fieldError(field, string(raw), err)
		}
		return s, nil
	case field == "port" && (raw[0] == '-' || '0' <= raw[0] && raw[0] <= '9'):
		return string(raw), nil // parsePort rejects anything but digits
	}
	want := "a string"
	if field == "port" {
		want = "a number or a string"
	}
	return "", fieldError(field, string(raw), fmt.Errorf("is not %s", want))
}
