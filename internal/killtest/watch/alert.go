package watch

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"

	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/syntax"

	"github.com/proxyline/proxyline/internal/secret"
)

// Defaults of an Alerter.
const (
	DefaultAlertTimeout = 30 * time.Second
	DefaultRealert      = time.Hour
)

// Alert is what the alert command reads on its stdin: one JSON object, one finding.
type Alert struct {
	Watch       string    `json:"watch"`
	Description string    `json:"description,omitempty"`
	Host        string    `json:"host"`
	Time        time.Time `json:"time"`
	// Repeat is true for a reminder: the finding was alerted Realert ago and is still there.
	Repeat  bool    `json:"repeat"`
	Finding Finding `json:"finding"`
}

// Alerter runs an alert command once per new finding, and again every Realert while the finding
// stays. A finding that goes away is forgotten: if it comes back, it is new. The command runs
// without a shell (Argv), in a process group of its own that is killed after Timeout, with a
// parent-death signal; its stdin is the Alert, its output is logged when it fails.
type Alerter struct {
	// Argv is the command. Required.
	Argv []string
	// Timeout bounds one run. Default 30s.
	Timeout time.Duration
	// Realert is how long a finding stays alerted before a reminder. Default 1h.
	Realert time.Duration
	// Env is the command's environment. Default: this process's.
	Env []string
	// Log receives failures. Default: discard.
	Log *slog.Logger

	sent map[string]time.Time // key → when it was last alerted
}

// ParseCommand splits an --alert command line into argv by shell quoting rules, without a
// shell: words, '...' and "..." quotes, backslash escapes. What only a shell could do (pipes,
// redirections, variables, $(...), globs, ~) is an error; with shell, the line is run by
// /bin/sh -c as it is.
func ParseCommand(s string, shell bool) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("empty alert command")
	}
	if shell {
		return []string{"/bin/sh", "-c", s}, nil
	}
	f, err := syntax.NewParser(syntax.Variant(syntax.LangPOSIX)).Parse(strings.NewReader(s), "")
	if err != nil {
		return nil, fmt.Errorf("alert command %q: %w", s, err)
	}
	notSimple := fmt.Errorf("alert command %q: only a program and its arguments (no pipes, ;, &&, redirections, variables or substitutions; use --alert-shell for those)", s)
	if len(f.Stmts) != 1 || len(f.Stmts[0].Redirs) > 0 || f.Stmts[0].Background || f.Stmts[0].Negated {
		return nil, notSimple
	}
	call, ok := f.Stmts[0].Cmd.(*syntax.CallExpr)
	if !ok || len(call.Assigns) > 0 || len(call.Args) == 0 {
		return nil, notSimple
	}
	var argv []string
	for _, w := range call.Args {
		if !literalWord(w) {
			return nil, notSimple
		}
		fields, err := expand.Fields(nil, w) // quote removal; nothing left to expand
		if err != nil || len(fields) != 1 {
			return nil, fmt.Errorf("alert command %q: word %d: not one argument", s, len(argv)+1)
		}
		argv = append(argv, fields[0])
	}
	if strings.ContainsAny(argv[0], "*?[") || strings.HasPrefix(argv[0], "~") {
		return nil, notSimple
	}
	return argv, nil
}

// literalWord reports whether a word holds only literal text and quotes: nothing a shell would
// expand (an unquoted glob or ~ included).
func literalWord(w *syntax.Word) bool {
	for i, p := range w.Parts {
		switch p := p.(type) {
		case *syntax.SglQuoted:
			if p.Dollar {
				return false
			}
		case *syntax.DblQuoted:
			for _, q := range p.Parts {
				if _, ok := q.(*syntax.Lit); !ok {
					return false
				}
			}
		case *syntax.Lit:
			if strings.ContainsAny(p.Value, "*?[{") || (i == 0 && strings.HasPrefix(p.Value, "~")) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// Notify alerts every finding not alerted within Realert, and forgets the findings gone. It
// returns how many alerts were sent and how many failed (a failed alert is tried again at the
// next Notify).
func (a *Alerter) Notify(ctx context.Context, watch, description string, findings []Finding, now time.Time) (sent, failed int) {
	if a.sent == nil {
		a.sent = map[string]time.Time{}
	}
	live := map[string]bool{}
	host, _ := os.Hostname()
	for _, f := range findings {
		live[f.Key] = true
		last, repeat := a.sent[f.Key]
		if repeat && now.Sub(last) < cmp.Or(a.Realert, DefaultRealert) {
			continue
		}
		err := a.run(ctx, Alert{Watch: watch, Description: description, Host: host, Time: now, Repeat: repeat, Finding: f})
		if err != nil {
			failed++
			a.logger().Warn("watch: alert command failed", "watch", watch, "finding", f.Key, "err", err)
			continue
		}
		sent++
		a.sent[f.Key] = now
	}
	for k := range a.sent {
		if !live[k] {
			delete(a.sent, k)
		}
	}
	return sent, failed
}

func (a *Alerter) logger() *slog.Logger {
	if a.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return a.Log
}

// maxAlertOutput bounds what is kept of an alert command's output for the log.
const maxAlertOutput = 4096

// run runs the command once with al on stdin.
func (a *Alerter) run(ctx context.Context, al Alert) error {
	body, err := json.Marshal(al)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, cmp.Or(a.Timeout, DefaultAlertTimeout))
	defer cancel()
	cmd := exec.CommandContext(ctx, a.Argv[0], a.Argv[1:]...)
	cmd.Stdin = bytes.NewReader(append(body, '\n'))
	var out tail
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = a.Env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	// The parent-death signal follows the thread that forked (go.dev/issue/27505): keep it.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", a.Argv[0], err)
	}
	// No group kill after Wait: the group's id may then be another's (HYGIENE.md, trap 2).
	err = cmd.Wait()
	if ctx.Err() != nil {
		return fmt.Errorf("%s: no exit within %s, killed: %s", a.Argv[0], cmp.Or(a.Timeout, DefaultAlertTimeout), out.String())
	}
	if err != nil {
		return fmt.Errorf("%s: %w: %s", a.Argv[0], err, secret.Redact(out.String()))
	}
	return nil
}

// tail keeps the last maxAlertOutput bytes written to it.
type tail struct{ b []byte }

func (t *tail) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > maxAlertOutput {
		t.b = t.b[len(t.b)-maxAlertOutput:]
	}
	return len(p), nil
}

func (t *tail) String() string { return strings.TrimSpace(string(t.b)) }
