package external

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/syntax"
)

// The placeholders a template may use.
const (
	phIn          = "in"          // the file holding the chunk, one proxy URL per line
	phOut         = "out"         // the file the tool writes live proxies to
	phTimeout     = "timeout"     // the per-proxy timeout in whole seconds, rounded up
	phTimeoutMS   = "timeout_ms"  // the per-proxy timeout in milliseconds
	phConcurrency = "concurrency" // how many proxies the tool may check at once
	phJudge       = "judge"       // the judge URL
)

var placeholders = []string{phIn, phOut, phTimeout, phTimeoutMS, phConcurrency, phJudge}

// placeholderRE matches a placeholder: a name of lower-case letters, digits and '_' in braces.
// Other braces, such as JSON in an argument, are left alone.
var placeholderRE = regexp.MustCompile(`\{([a-z][a-z0-9_]*)\}`)

// ErrTemplate is wrapped by every error about a template.
var ErrTemplate = errors.New("exec template")

// template is a parsed command template: its argv, quotes removed, placeholders not yet
// replaced.
type template struct {
	argv []string
	uses map[string]bool
}

// parseTemplate splits a command template into argv with shell quoting rules: words separated by
// blanks; '...' and "..." quote; a backslash escapes the next character (inside "..." only
// before $ ` " \ and newline); $'...' holds C escapes. No shell runs, so anything that needs one
// (pipes, ;, &&, redirections, variables, $(...), globs' expansion, assignments) is an error
// rather than a surprise; glob characters are passed through literally.
//
// The template is parsed with mvdan.cc/sh's parser (a complete, maintained POSIX/bash parser),
// so what counts as a word, a quote or an operator is exactly what a shell would do; only the
// quote removal of the few word parts we allow is done here.
func parseTemplate(s string) (*template, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("%w: empty", ErrTemplate)
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
	for _, w := range call.Args {
		arg, err := unquote(w.Parts, false)
		if err != nil {
			return nil, fmt.Errorf("%w %q: %w", ErrTemplate, s, err)
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

// unquote removes the quotes of a word's parts. inDouble says the parts are inside "...".
func unquote(parts []syntax.WordPart, inDouble bool) (string, error) {
	var b strings.Builder
	for _, p := range parts {
		switch p := p.(type) {
		case *syntax.Lit:
			b.WriteString(unescape(p.Value, inDouble))
		case *syntax.SglQuoted:
			v := p.Value
			if p.Dollar {
				var err error
				if v, _, err = expand.Format(nil, v, nil); err != nil {
					return "", fmt.Errorf("$'%s': %w", p.Value, err)
				}
				v, _, _ = strings.Cut(v, "\x00") // as bash does: a NUL ends the string
			}
			b.WriteString(v)
		case *syntax.DblQuoted:
			if p.Dollar {
				return "", errors.New(`$"..." needs a shell`)
			}
			s, err := unquote(p.Parts, true)
			if err != nil {
				return "", err
			}
			b.WriteString(s)
		case *syntax.ParamExp:
			return "", fmt.Errorf("$%s: variables need a shell, and none is run", paramName(p))
		default:
			return "", fmt.Errorf("%s needs a shell, and none is run", partName(p))
		}
	}
	return b.String(), nil
}

// unescape removes backslashes from literal text: outside quotes every backslash escapes the next
// character (and a backslash-newline vanishes); inside "..." only before $ ` " \ and newline.
func unescape(s string, inDouble bool) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		next := s[i+1]
		switch {
		case next == '\n':
			i++ // line continuation
		case !inDouble || strings.IndexByte("$`\"\\", next) >= 0:
			b.WriteByte(next)
			i++
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
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
