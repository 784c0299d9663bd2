package backend

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/proxyline/proxyline/internal/check/external"
	"github.com/proxyline/proxyline/internal/supervise"
)

// Exec selects an external checker: the --exec flags, the same on check, scrape and worker.
// The zero value is the in-process checker.
type Exec struct {
	// Template is the tool's command line (docs/check.md, "External checkers"); "" for the
	// in-process checker.
	Template string
	// PTY runs the tool on a pseudo-terminal.
	PTY bool
	// Env names, comma-separated, variables of our environment to pass to the tool besides its
	// minimal environment.
	Env string
	// Disable names, comma-separated, supervision layers to switch off (supervise.ParseLayers).
	Disable string
}

// Register defines --exec, --exec-pty, --exec-env and --disable-layers on fs.
func (e *Exec) Register(fs *flag.FlagSet) {
	fs.StringVar(&e.Template, "exec", "", "command `template` of an external tool to check with instead of the in-process checker, run under supervision once per chunk, e.g. 'mubeng -f {in} --check -o {out} -t {timeout}' (placeholders: docs/check.md)")
	fs.BoolVar(&e.PTY, "exec-pty", false, "run the --exec tool on a pseudo-terminal, for tools that need one (no 'script' wrapper needed)")
	fs.StringVar(&e.Env, "exec-env", "", "comma-separated environment variable `names` to pass to the --exec tool besides PATH, HOME, LANG, LC_*, TZ, TERM (never PROXYLINE_*)")
	fs.StringVar(&e.Disable, "disable-layers", "", "switch supervision layers off, comma-separated (process_group, pdeathsig, cgroup, pid_namespace, subreaper, cookie, all): for diagnosis, and for proving that killtest catches what they prevent")
}

// Validate reports every invalid flag, by name. With a template it also parses it and finds
// its program (as a run will): a command that cannot run its tool must say so before any work.
// Whether the template's {judge} has a judge is checked where the judge is known (Open, Jobs).
func (e Exec) Validate() error {
	var errs []error
	if _, err := supervise.ParseLayers(e.Disable); err != nil {
		errs = append(errs, fmt.Errorf("--disable-layers: %w", err))
	}
	switch {
	case e.Template == "" && e.PTY:
		errs = append(errs, errors.New("--exec-pty needs --exec"))
	case e.Template == "" && e.Env != "":
		errs = append(errs, errors.New("--exec-env needs --exec"))
	case e.Template != "":
		// A placeholder judge and runner: the template and the names, not the judge, are checked here.
		c := e.checker("http://127.0.0.1/", 0, 0, (*supervise.Supervisor)(nil), nil)
		if err := c.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("--exec: %w", err))
		} else if _, err := external.ValidateTemplate(e.Template); err != nil { // the program is there
			errs = append(errs, fmt.Errorf("--exec: %w", err))
		}
	}
	return errors.Join(errs...)
}

// EnvNames splits Env into names.
func (e Exec) EnvNames() []string {
	var names []string
	for n := range strings.SplitSeq(e.Env, ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	return names
}

// Layers is the supervision layers Disable switches off (call Validate first).
func (e Exec) Layers() supervise.Layers {
	l, _ := supervise.ParseLayers(e.Disable)
	return l
}

// checker is the external checker of e for a judge, run under r.
func (e Exec) checker(judge string, timeout time.Duration, concurrency int, r external.Runner, log *slog.Logger) *external.Checker {
	return &external.Checker{Template: e.Template, Timeout: timeout, Concurrency: concurrency, Judge: judge,
		Env: e.EnvNames(), PTY: e.PTY, Runner: r, Log: log}
}
