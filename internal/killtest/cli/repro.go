package cli

import (
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/proxyline/proxyline/internal/killtest/scenario"
)

// The command lines in the reports rerun exactly what ran: every flag that changes a run, with
// its value from the command line or from KILLTEST_* (the reader's environment may differ), paths
// made absolute (the reader's directory may differ), and the environment variables the scenarios
// read (${NAME} that is neither a built-in nor a var), secrets masked.

// runLine is `[VAR=value...] killtest run FLAGS ARGS`. outputs adds the report flags (--out,
// --json, --junit, --html, -v): the suite's own command line has them, a run's reproduce line
// does not (it must not overwrite the report it is read from).
func runLine(o runOptions, seed int64, runs int, outputs bool, env []string, args []string) string {
	var w []string
	w = append(w, env...)
	w = append(w, "killtest", "run", "--seed", strconv.FormatInt(seed, 10), "--runs", strconv.Itoa(runs))
	if o.Bin != "" {
		w = append(w, "--bin", shellQuote(absPath(o.Bin)))
	}
	if o.NoCgroup {
		w = append(w, "--no-cgroup")
	}
	if outputs {
		w = append(w, "--out", shellQuote(absPath(o.Out)))
		for _, f := range []struct{ flag, v string }{{"--json", o.JSON}, {"--junit", o.JUnit}, {"--html", o.HTML}} {
			if f.v != "" {
				w = append(w, f.flag, shellQuote(absPath(f.v)))
			}
		}
		if o.Verbose {
			w = append(w, "-v")
		}
	}
	for _, a := range args {
		if _, err := os.Stat(a); err == nil {
			a = absPath(a)
		}
		w = append(w, shellQuote(a))
	}
	return strings.Join(w, " ")
}

// target is how a run names its scenario: the built-in's name, or the file's absolute path.
func target(sc *scenario.Scenario) string {
	if strings.HasPrefix(sc.File, builtinPrefix) {
		return sc.Name
	}
	return absPath(sc.File)
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// envAssignments returns NAME=value shell words for each variable the scenarios take from the
// environment (sorted, each once), unset ones left out (the scenario failed to parse without
// them, or uses a default). A secret-named variable is not recorded: its word takes the value
// from the environment of whoever reruns the line, and the shell stops with a message naming it
// when it is unset. URL passwords and password= pairs in other values are masked as ***.
func envAssignments(getenv func(string) string, scs ...*scenario.Scenario) []string {
	var names []string
	for _, sc := range scs {
		for _, n := range sc.Environment() {
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	slices.Sort(names)
	var out []string
	for _, n := range names {
		v := getenv(n)
		switch {
		case v == "":
		case secretName.MatchString(n):
			out = append(out, n+`="${`+n+`:?set `+n+` to rerun: a secret, not recorded}"`)
		default:
			out = append(out, n+"="+shellQuote(maskValue(n, v)))
		}
	}
	return out
}

// secretName matches variable names whose values are secrets.
var secretName = regexp.MustCompile(`(?i)PASS|SECRET|TOKEN|KEY|CREDENTIAL`)

// secretPair matches password=... pairs of connection strings (libpq, DSNs).
var secretPair = regexp.MustCompile(`(?i)\b(password|passwd|pwd)=[^\s&;]*`)

// urlUserinfo matches the user:password@ part of URLs inside a value.
var urlUserinfo = regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*):[^/\s@]*@`)

// maskValue hides what looks like a secret: the whole value of a secret-named variable, URL
// passwords and password= pairs in any other.
func maskValue(name, v string) string {
	if secretName.MatchString(name) {
		return "***"
	}
	if u, err := url.Parse(v); err == nil && u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "***")
			v = u.String()
			v = strings.Replace(v, "%2A%2A%2A", "***", 1)
		}
	}
	v = urlUserinfo.ReplaceAllString(v, "$1:***@")
	return secretPair.ReplaceAllString(v, "$1=***")
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%", r))
	}) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
