package supervise

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Cookie is the value of CookieEnv: which supervisor (pid and start time, so a reused pid is not
// mistaken for the owner) started the task, and the task's id.
//
// Format: <owner-pid>:<owner-starttime>:<task-id>, where owner-starttime is field 22 of
// /proc/<pid>/stat (clock ticks since boot) and task-id is 1–128 characters of [A-Za-z0-9_.-],
// by default <name>-<sequence>.
type Cookie struct {
	OwnerPID   int
	OwnerStart uint64
	TaskID     string
}

// String formats the cookie as it appears in the environment.
func (c Cookie) String() string {
	return strconv.Itoa(c.OwnerPID) + ":" + strconv.FormatUint(c.OwnerStart, 10) + ":" + c.TaskID
}

// Owner formats the owner part, "<pid>:<starttime>".
func (c Cookie) Owner() string {
	return strconv.Itoa(c.OwnerPID) + ":" + strconv.FormatUint(c.OwnerStart, 10)
}

var errCookie = errors.New("malformed task cookie")

// ParseCookie parses a cookie value (without the "NAME=" part).
func ParseCookie(s string) (Cookie, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return Cookie{}, fmt.Errorf("%w %q: want <owner-pid>:<owner-starttime>:<task-id>", errCookie, s)
	}
	pid, err := strconv.Atoi(parts[0])
	if err != nil || pid <= 0 || !canonical(parts[0]) {
		return Cookie{}, fmt.Errorf("%w %q: owner pid %q", errCookie, s, parts[0])
	}
	start, err := strconv.ParseUint(parts[1], 10, 64)
	if err != nil || !canonical(parts[1]) {
		return Cookie{}, fmt.Errorf("%w %q: owner start time %q", errCookie, s, parts[1])
	}
	if !validTaskID(parts[2]) {
		return Cookie{}, fmt.Errorf("%w %q: task id %q", errCookie, s, parts[2])
	}
	return Cookie{OwnerPID: pid, OwnerStart: start, TaskID: parts[2]}, nil
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
