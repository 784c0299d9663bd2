package rotate

import (
	"encoding/base64"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/proxyline/proxyline/internal/serve"
)

// maxSession bounds a session name.
const maxSession = 128

// splitSession splits a proxy user name into the user and the session name: "USER-session-NAME"
// (the last "-session-" counts) or "session-NAME" (no user). Without one, session is "".
func splitSession(username string) (user, session string) {
	if rest, ok := strings.CutPrefix(username, "session-"); ok {
		return "", rest
	}
	if i := strings.LastIndex(username, "-session-"); i >= 0 {
		return username[:i], username[i+len("-session-"):]
	}
	return username, ""
}

// inbound checks inbound credentials and derives the sticky key of a client.
type inbound struct {
	gate   *serve.Gate // the main listener's gate: holds the credentials, if any
	sticky Sticky
}

// admit checks a user name and password given by a client (ok says whether any were given) and
// returns the sticky key for the client at remote. With credentials configured, the user name
// must be the configured user, alone or followed by -session-NAME, and the password must match;
// without, anything is admitted and only the session name is used.
func (in *inbound) admit(username, password string, given bool, remote net.Addr) (key string, ok bool) {
	user, session := username, ""
	if given {
		user, session = splitSession(username)
		if len(session) > maxSession {
			return "", false
		}
	}
	if in.gate.Authenticated() {
		if !given {
			return "", false
		}
		// Both comparisons always run, in constant time; the split itself only depends on the
		// user name the client chose.
		whole := in.gate.Authorize(username, password)
		split := session != "" && in.gate.Authorize(user, password)
		switch {
		case whole:
			user, session = username, ""
		case split:
		default:
			return "", false
		}
	}
	switch {
	case in.sticky == StickyOff:
		return "", true
	case session != "":
		return "s:" + user + ":" + session, true
	case in.sticky == StickyClient:
		if ap, err := netip.ParseAddrPort(remote.String()); err == nil {
			return "c:" + ap.Addr().Unmap().String(), true
		}
	}
	return "", true
}

// proxyBasicAuth parses a Proxy-Authorization: Basic header.
func proxyBasicAuth(h http.Header) (user, pass string, ok bool) {
	v := h.Get("Proxy-Authorization")
	scheme, cred, found := strings.Cut(v, " ")
	if !found || !strings.EqualFold(scheme, "Basic") {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
	if err != nil {
		return "", "", false
	}
	user, pass, ok = strings.Cut(string(raw), ":")
	return user, pass, ok
}
