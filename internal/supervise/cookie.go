package supervise

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Cookie is the value of CookieEnv: which supervisor started the task (its PID namespace, its
// pid there and its start time, so that neither a reused pid nor the same pid in another
// namespace is mistaken for the owner), and the task's id.
//
// Format: <owner-pidns>:<owner-pid>:<owner-starttime>:<task-id>, where owner-pidns is the inode
// number of the owner's /proc/self/ns/pid, owner-pid its pid in that namespace, owner-starttime
// field 22 of its /proc/<pid>/stat (clock ticks since boot), and task-id 1–128 characters of
// [A-Za-z0-9_.-], by default <name>-<sequence>. Cookies of the earlier three-field format
// (no namespace) do not parse: their processes are never touched.
type Cookie struct {
	OwnerPIDNS uint64
	OwnerPID   int
	OwnerStart uint64
	TaskID     string
}

// String formats the cookie as it appears in the environment.
func (c Cookie) String() string {
	return c.owner().String() + ":" + c.TaskID
}

// Owner formats the owner part, "<pidns>:<pid>:<starttime>".
func (c Cookie) Owner() string { return c.owner().String() }

func (c Cookie) owner() ownerID {
	return ownerID{ns: c.OwnerPIDNS, pid: c.OwnerPID, start: c.OwnerStart}
}

// ownerID is a supervisor's identity: its PID namespace (inode of /proc/<pid>/ns/pid), its pid
// in that namespace, and its start time (stat field 22).
type ownerID struct {
	ns    uint64
	pid   int
	start uint64
}

// String formats the owner as in cookies and reports: "<pidns>:<pid>:<starttime>".
func (o ownerID) String() string {
	return strconv.FormatUint(o.ns, 10) + ":" + strconv.Itoa(o.pid) + ":" + strconv.FormatUint(o.start, 10)
}

var errCookie = errors.New("malformed task cookie")

// ParseCookie parses a cookie value (without the "NAME=" part).
func ParseCookie(s string) (Cookie, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 4 {
		return Cookie{}, fmt.Errorf("%w %q: want <owner-pidns>:<owner-pid>:<owner-starttime>:<task-id>", errCookie, s)
	}
	ns, err := strconv.ParseUint(parts[0], 10, 64)
	if err != nil || ns == 0 || !canonical(parts[0]) {
		return Cookie{}, fmt.Errorf("%w %q: owner pid namespace %q", errCookie, s, parts[0])
	}
	pid, err := strconv.Atoi(parts[1])
	if err != nil || pid <= 0 || !canonical(parts[1]) {
		return Cookie{}, fmt.Errorf("%w %q: owner pid %q", errCookie, s, parts[1])
	}
	start, err := strconv.ParseUint(parts[2], 10, 64)
	if err != nil || !canonical(parts[2]) {
		return Cookie{}, fmt.Errorf("%w %q: owner start time %q", errCookie, s, parts[2])
	}
	if !validTaskID(parts[3]) {
		return Cookie{}, fmt.Errorf("%w %q: task id %q", errCookie, s, parts[3])
	}
	return Cookie{OwnerPIDNS: ns, OwnerPID: pid, OwnerStart: start, TaskID: parts[3]}, nil
}

// canonical reports whether s is a decimal number as strconv formats it: digits only, no
// leading zero, so every cookie has exactly one spelling.
func canonical(s string) bool {
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func validTaskID(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-') {
			return false
		}
	}
	return true
}

// cookieFromEnviron returns the raw cookie value in an environment list, if any.
func cookieFromEnviron(env []string) (string, bool) {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, CookieEnv+"="); ok {
			return v, true
		}
	}
	return "", false
}

// sanitizeName maps a configured name to [A-Za-z0-9_-].
func sanitizeName(name string) string {
	if name == "" {
		return "proxyline"
	}
	b := []byte(name)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	if len(b) > 64 {
		b = b[:64]
	}
	return string(b)
}

// withEnv returns env without any NAME= entries for the given names, plus the extra entries.
func withEnv(env []string, drop []string, extra ...string) []string {
	out := make([]string, 0, len(env)+len(extra))
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		keep := true
		for _, d := range drop {
			if name == d {
				keep = false
				break
			}
		}
		if keep {
			out = append(out, kv)
		}
	}
	return append(out, extra...)
}
