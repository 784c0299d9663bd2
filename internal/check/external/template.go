package external

import (
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/syntax"
)

// The placeholders a template may use.
const (
	phIn          = "in"          // the file holding the chunk, one proxy URL per line
	phOut         = "out"         // the file the tool writes live proxies to
	phTimeout     = "timeout"     // the per-proxy timeout as a Go duration: 10s, 1.5s, 500ms
	phTimeoutS    = "timeout_s"   // the per-proxy timeout in whole seconds, rounded up, at least 1
	phTimeoutMS   = "timeout_ms"  // the per-proxy timeout in milliseconds
	phConcurrency = "concurrency" // how many proxies the tool may check at once
	phJudge       = "judge"       // the judge URL
)

var placeholders = []string{phIn, phOut, phTimeout, phTimeoutS, phTimeoutMS, phConcurrency, phJudge}

// placeholderRE matches a placeholder: a name of lower-case letters, digits and '_' in braces.
// Other braces, such as JSON in a quoted argument, are left alone.
var placeholderRE = regexp.MustCompile(`\{([a-z][a-z0-9_]*)\}`)

// ErrTemplate is wrapped by every error about a template (bad input: the user's to fix).
var ErrTemplate = errors.New("exec template")

// template is a parsed command template: its argv, quotes removed, placeholders not yet
// replaced.
type template struct {
	argv []string
	uses map[string]bool
}

// ValidateTemplate parses an --exec template exactly as CheckChunk does and finds its program
// with exec.LookPath in this process's PATH (the tool gets the same PATH). It returns the
// program's path. Every error wraps ErrTemplate and names the template: it is bad input, to be
// reported before any work is taken (a worker calls it at start-up).
//
// It does not check what depends on a Checker's other fields ({judge} needs Checker.Judge):
// Checker.Validate does.
func ValidateTemplate(s string) (string, error) {
	t, err := parseTemplate(s)
	if err != nil {
		return "", err
	}
	path, err := exec.LookPath(t.argv[0])
	if err != nil {
		return "", fmt.Errorf("%w %q: program %q: %w", ErrTemplate, s, t.argv[0], err)
	}
	return path, nil
}

// parseTemplate splits a command template into argv with shell quoting rules: words separated by
// blanks; '...' and "..." quote; a backslash escapes the next character (inside "..." only
// before $ ` " \ and newline); $'...' holds C escapes. No shell runs, so anything that would need
// one is an error rather than a surprise: pipes, ;, &&, redirections, variables, $(...),
// assignments, and the expansions a shell would do to an unquoted word: ~ (at the start of a word,
// or after = or : in a NAME=value word, as bash does), glob characters * ? [ and brace
// expansion {a,b}. Quoted, they are plain characters.
//
// The template is parsed with mvdan.cc/sh's parser (a complete, maintained POSIX/bash parser),
// so what counts as a word, a quote or an operator is exactly what a shell would do; only the
// quote removal of the few word parts we allow is done here.
func parseTemplate(s string) (*template, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("%w: empty", ErrTemplate)
	}
	if i := strings.IndexByte(s, 0); i >= 0 {
		return nil, fmt.Errorf("%w %q: a NUL byte at offset %d", ErrTemplate, s, i)
	}
	f, err := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(strings.NewReader(s), "")
	if err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrTemplate, s, err)
	}
	needShell := func(what string) error {
		return fmt.Errorf("%w %q: %s needs a shell, and none is run: give one command and its arguments (use {out} instead of a redirection)", ErrTemplate, s, what)
	}
	if len(f.Stmts) != 1 {
		return nil, needShell("more than one command")
	}
	st := f.Stmts[0]
	switch {
	case len(st.Redirs) > 0:
		return nil, needShell("a redirection")
	case st.Background || st.Coprocess || st.Negated:
		return nil, needShell("'&' or '!'")
	}
	call, ok := st.Cmd.(*syntax.CallExpr)
	if !ok {
		return nil, needShell("a pipe, list or compound command")
	}
	if len(call.Assigns) > 0 {
		return nil, needShell("a variable assignment")
	}
	t := &template{uses: map[string]bool{}}
	for i, w := range call.Args {
		arg, err := parseWord(w)
		if err != nil {
			return nil, fmt.Errorf("%w %q: argument %d: %w", ErrTemplate, s, i, err)
		}
		if strings.Contains(arg, "{timeout}s") || strings.Contains(arg, "{timeout}m") {
			return nil, fmt.Errorf("%w %q: argument %d: {timeout} is a duration with its unit (10s, 1.5s, 500ms): write {timeout}, or {timeout_s}s, {timeout_ms}ms", ErrTemplate, s, i)
		}
		for _, m := range placeholderRE.FindAllStringSubmatch(arg, -1) {
			if !slices.Contains(placeholders, m[1]) {
				return nil, fmt.Errorf("%w %q: unknown placeholder {%s} (known: {%s})", ErrTemplate, s, m[1], strings.Join(placeholders, "}, {"))
			}
			t.uses[m[1]] = true
		}
		t.argv = append(t.argv, arg)
	}
	if len(t.argv) == 0 {
		return nil, fmt.Errorf("%w %q: no command", ErrTemplate, s)
	}
	if placeholderRE.MatchString(t.argv[0]) {
		return nil, fmt.Errorf("%w %q: the program name may not be a placeholder", ErrTemplate, s)
	}
	return t, nil
}

// parseWord removes the quotes of one word and refuses what a shell would expand in it.
func parseWord(w *syntax.Word) (string, error) {
	if hasBraceExpansion(w) {
		return "", errors.New("brace expansion ({a,b} or {1..3}) needs a shell, and none is run: quote the braces to pass them as they are")
	}
	var u unquoter
	if err := u.parts(w.Parts, false); err != nil {
		return "", err
	}
	if err := u.checkExpansions(); err != nil {
		return "", err
	}
	return u.b.String(), nil
}

// hasBraceExpansion reports whether bash would expand braces in w: {a,b} or {1..3}, not {in}.
// It leaves w as it is.
func hasBraceExpansion(w *syntax.Word) bool {
	cp := &syntax.Word{Parts: make([]syntax.WordPart, len(w.Parts))}
	for i, p := range w.Parts {
		if l, ok := p.(*syntax.Lit); ok {
			l2 := *l
			p = &l2
		}
		cp.Parts[i] = p
	}
	if !syntax.SplitBraces(cp) {
		return false
	}
	for _, p := range cp.Parts {
		if b, ok := p.(*syntax.BraceExp); ok && (b.Sequence || len(b.Elems) > 1) {
			return true
		}
	}
	return false
}

// unquoter builds a word's value and remembers which of its bytes were neither quoted nor
// escaped: only those would a shell expand.
type unquoter struct {
	b strings.Builder
	// bare holds, for each byte of b, its column in the template when it was neither quoted nor
	// escaped, else 0.
	bare []uint
}

func (u *unquoter) write(s string, col uint) {
	u.b.WriteString(s)
	for range len(s) {
		u.bare = append(u.bare, col)
	}
}

// parts removes the quotes of a word's parts. inDouble says the parts are inside "...".
func (u *unquoter) parts(parts []syntax.WordPart, inDouble bool) error {
	for _, p := range parts {
		switch p := p.(type) {
		case *syntax.Lit:
			u.lit(p, inDouble)
		case *syntax.SglQuoted:
			v := p.Value
			if p.Dollar {
				var err error
				// A fresh Config each time: with nil, Format prepares (writes) a package-level
				// one, a data race between templates parsed at once (mvdan.cc/sh v3.14.1).
				if v, _, err = expand.Format(&expand.Config{}, v, nil); err != nil {
					return fmt.Errorf("$'%s': %w", p.Value, err)
				}
				v, _, _ = strings.Cut(v, "\x00") // as bash does: a NUL ends the string
			}
			u.write(v, 0)
		case *syntax.DblQuoted:
			if p.Dollar {
				return errors.New(`$"..." needs a shell`)
			}
			if err := u.parts(p.Parts, true); err != nil {
				return err
			}
		case *syntax.ParamExp:
			return fmt.Errorf("$%s: variables need a shell, and none is run", paramName(p))
		default:
			return fmt.Errorf("%s needs a shell, and none is run", partName(p))
		}
	}
	return nil
}

// lit removes backslashes from literal text: outside quotes every backslash escapes the next
// character (and a backslash-newline vanishes); inside "..." only before $ ` " \ and newline.
func (u *unquoter) lit(l *syntax.Lit, inDouble bool) {
	s := l.Value
	col := l.Pos().Col()
	for i := 0; i < len(s); i++ {
		c := s[i]
		bare := uint(0)
		if !inDouble {
			bare = col + uint(i)
		}
		if c != '\\' || i+1 == len(s) {
			u.b.WriteByte(c)
			u.bare = append(u.bare, bare)
			continue
		}
		next := s[i+1]
		switch {
		case next == '\n':
			i++ // line continuation
		case !inDouble || strings.IndexByte("$`\"\\", next) >= 0:
			u.b.WriteByte(next)
			u.bare = append(u.bare, 0) // escaped
			i++
		default:
			u.b.WriteByte(c)
			u.bare = append(u.bare, 0)
		}
	}
}

// checkExpansions refuses the unquoted characters a shell would expand: glob characters
// anywhere, and a tilde where bash expands one (start of the word; after the '=' of a NAME=value
// word or after a ':' in its value).
func (u *unquoter) checkExpansions() error {
	s := u.b.String()
	assign := -1 // index of the '=' of a NAME=value word
	if i := strings.IndexByte(s, '='); i > 0 && u.bare[i] != 0 && isName(s[:i]) {
		assign = i
	}
	for i := range len(s) {
		col := u.bare[i]
		if col == 0 {
			continue
		}
		switch c := s[i]; c {
		case '*', '?', '[':
			return fmt.Errorf("unquoted glob character %q at column %d: no shell runs to expand it; quote it ('%c') to pass it as it is", c, col, c)
		case '~':
			if i == 0 || (assign >= 0 && i > assign && u.bare[i-1] != 0 && (i-1 == assign || s[i-1] == ':')) {
				return fmt.Errorf("unquoted ~ at column %d: no shell runs to expand it to a home directory; write the path out, or quote it ('~') to pass it as it is", col)
			}
		}
	}
	return nil
}

// isName reports whether s is a shell variable name.
func isName(s string) bool {
	for i, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}

func paramName(p *syntax.ParamExp) string {
	if p.Param != nil {
		return p.Param.Value
	}
	return "{...}"
}

func partName(p syntax.WordPart) string {
	switch p.(type) {
	case *syntax.CmdSubst:
		return "command substitution $(...)"
	case *syntax.ArithmExp:
		return "arithmetic $((...))"
	case *syntax.ProcSubst:
		return "process substitution <(...)"
	case *syntax.ExtGlob:
		return "an extended glob"
	case *syntax.BraceExp:
		return "brace expansion"
	}
	return fmt.Sprintf("%T", p)
}

// expand returns argv with every placeholder replaced by its value. A value is never split:
// it becomes part of the one argument the placeholder was in.
func (t *template) expand(values map[string]string) []string {
	argv := make([]string, len(t.argv))
	for i, a := range t.argv {
		argv[i] = placeholderRE.ReplaceAllStringFunc(a, func(m string) string {
			return values[m[1:len(m)-1]]
		})
	}
	return argv
}

// timeoutValues gives the values of the three timeout placeholders for d (> 0).
func timeoutValues(d time.Duration) map[string]string {
	return map[string]string{
		phTimeout:   formatDuration(d),
		phTimeoutS:  strconv.FormatInt(int64(max((d+time.Second-1)/time.Second, 1)), 10),
		phTimeoutMS: strconv.FormatInt(max(d.Milliseconds(), 1), 10),
	}
}

// formatDuration writes d, rounded to the millisecond (at least 1 ms), as a duration that Go's
// time.ParseDuration (mubeng's -t) and most other tools read: whole seconds as "10s" (never
// Go's "1m0s"), other values at or over a second as decimal seconds "1.5s", shorter ones as
// "500ms".
func formatDuration(d time.Duration) string {
	ms := max(d.Round(time.Millisecond).Milliseconds(), 1)
	switch {
	case ms%1000 == 0:
		return strconv.FormatInt(ms/1000, 10) + "s"
	case ms < 1000:
		return strconv.FormatInt(ms, 10) + "ms"
	}
	return strconv.FormatInt(ms/1000, 10) + "." + strings.TrimRight(fmt.Sprintf("%03d", ms%1000), "0") + "s"
}
