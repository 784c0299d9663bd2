package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/proxyline/proxyline/internal/killtest/watch"
	"github.com/proxyline/proxyline/internal/serve"
)

// watchOptions are the flags of killtest watch.
type watchOptions struct {
	File         string // the watch file (the one argument)
	Once         bool
	State        string
	Alert        string
	AlertShell   bool
	AlertTimeout time.Duration
	Realert      time.Duration
	JSON         bool
	Serve        serve.Options
}

// DefaultWatchListen is where a running watch serves /metrics.
const DefaultWatchListen = "127.0.0.1:9469"

// Validate checks the options (not the watch file: that is read next).
func (o *watchOptions) Validate() error {
	if o.File == "" {
		return usageError("watch needs one watch file")
	}
	if o.AlertShell && o.Alert == "" {
		return usageError("--alert-shell without --alert")
	}
	if o.AlertTimeout <= 0 || o.Realert <= 0 {
		return usageError("--alert-timeout and --realert must be positive")
	}
	if o.Alert != "" {
		if _, err := watch.ParseCommand(o.Alert, o.AlertShell); err != nil {
			return usageError("--alert: %v", err)
		}
	}
	if !o.Once {
		if err := o.Serve.Validate(); err != nil {
			return usageError("%v", err)
		}
	}
	return nil
}

func watchCommand() command {
	return command{Name: "watch", Summary: "watch a deployed system for orphans, fd and memory growth and queue limits", Run: runWatch}
}

func runWatch(ctx context.Context, env *Env, args []string) error {
	var o watchOptions
	fs := newFlagSet("watch", "[flags] WATCHFILE", "Watch a deployed system (one killtest did not start) as a watch file describes it: orphans\n"+
		"(by cookie, cgroup or parent rules), fd and memory growth of named processes, queue probes\n"+
		"against limits. Without --once it scans at the file's interval, serves /metrics and /report,\n"+
		"and runs --alert once per new finding; with --once it scans once (waiting out orphan\n"+
		"candidates) and exits 0 clean, 1 findings, 2 cannot judge. See docs/operate.md.")
	fs.BoolVar(&o.Once, "once", false, "scan once and exit: 0 clean, 1 findings, 2 cannot judge (for cron or a systemd timer)")
	fs.StringVar(&o.State, "state", "", "`file` keeping samples and alerts between runs (needed with --once for fd/memory growth)")
	fs.StringVar(&o.Alert, "alert", "", "`command` run once per new finding with the evidence as JSON on stdin (no shell: see --alert-shell)")
	fs.BoolVar(&o.AlertShell, "alert-shell", false, "run --alert with /bin/sh -c (pipes, variables)")
	fs.DurationVar(&o.AlertTimeout, "alert-timeout", watch.DefaultAlertTimeout, "bound on one run of the alert command (then its process group is killed)")
	fs.DurationVar(&o.Realert, "realert", watch.DefaultRealert, "alert a finding again after this long if it is still there")
	fs.BoolVar(&o.JSON, "json", false, "with --once: print the report as JSON")
	o.Serve.Register(fs, DefaultWatchListen)
	if err := parseFlags(fs, env, args); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		return usageError("watch takes one watch file, got %d arguments", fs.NArg())
	}
	o.File = fs.Arg(0)
	if err := o.Validate(); err != nil {
		return err
	}
	file, err := watch.LoadFile(o.File)
	if err != nil {
		return exitWith(ExitUnknown, err)
	}
	if o.Once && o.State == "" && growthWatched(file) {
		return usageError("%s watches processes for growth: with --once, growth is judged across runs, give --state FILE", o.File)
	}
	w, err := watch.New(watch.Config{File: file, Log: env.Log})
	if err != nil {
		return exitWith(ExitUnknown, err)
	}
	var al *watch.Alerter
	if o.Alert != "" {
		argv, _ := watch.ParseCommand(o.Alert, o.AlertShell)
		al = &watch.Alerter{Argv: argv, Timeout: o.AlertTimeout, Realert: o.Realert, Log: env.Log}
	}
	if o.State != "" {
		st, err := watch.LoadState(o.State, file.Name)
		if err != nil {
			return exitWith(ExitUnknown, err)
		}
		w.Restore(st, al)
	}
	if o.Once {
		return watchOnce(ctx, env, o, w, al, file)
	}
	return watchRun(ctx, env, o, w, al)
}

func growthWatched(f *watch.File) bool { return len(f.Processes) > 0 }

// watchOnce scans once, alerts, saves the state and maps the report to the exit code.
func watchOnce(ctx context.Context, env *Env, o watchOptions, w *watch.Watcher, al *watch.Alerter, file *watch.File) error {
	r := w.Once(ctx)
	if al != nil {
		al.Notify(ctx, file.Name, file.Description, r.Findings, r.Time)
	}
	if o.State != "" {
		if err := w.State(al).Save(o.State); err != nil {
			r.Errors = append(r.Errors, err.Error())
		}
	}
	if o.JSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return exitWith(ExitUnknown, err)
		}
	} else {
		printReport(env.Stdout, r)
	}
	if code := r.Exit(); code != watch.ExitClean {
		return exitWith(code, errors.New(""))
	}
	return nil
}

// printReport writes a report for people: the verdict, each finding with its evidence, what
// could not be judged.
func printReport(w io.Writer, r *watch.Report) {
	verdict := map[int]string{watch.ExitClean: "clean", watch.ExitFindings: "FINDINGS", watch.ExitUnknown: "CANNOT JUDGE"}[r.Exit()]
	fmt.Fprintf(w, "watch %s: %s (%d finding(s), %d orphan candidate(s) pending)\n", r.Watch, verdict, len(r.Findings), r.Pending)
	for _, f := range r.Findings {
		fmt.Fprintf(w, "- %s\n", f.Summary)
		for _, ev := range f.Evidence {
			fmt.Fprintf(w, "    pid %d state %s pgid %d sid %d cgroup %s age %s\n", ev.PID, ev.State, ev.PGID, ev.SID, ev.Cgroup, ev.Age)
			for _, c := range ev.Chain {
				fmt.Fprintf(w, "    parent pid %d `%s`\n", c.PID, c.Command)
			}
		}
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "cannot judge: %s\n", e)
	}
	if len(r.Probes) > 0 {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(r.Probes)) {
			parts = append(parts, fmt.Sprintf("%s=%g", k, r.Probes[k]))
		}
		fmt.Fprintf(w, "probes: %s\n", strings.Join(parts, " "))
	}
}

// watchRun runs the watch until the first SIGINT/SIGTERM, then stops it (a second signal, or 10 s,
// cuts the scan in progress).
func watchRun(ctx context.Context, env *Env, o watchOptions, w *watch.Watcher, al *watch.Alerter) error {
	gate, err := o.Serve.Gate(env.Log)
	if err != nil {
		return exitWith(ExitUnknown, err)
	}
	svc, err := watch.NewService(watch.ServiceConfig{Watcher: w, Alerter: al, Gate: gate, StatePath: o.State, Log: env.Log})
	if err != nil {
		return exitWith(ExitUnknown, err)
	}
	if err := svc.Start(ctx); err != nil {
		return exitWith(ExitUnknown, fmt.Errorf("start: %w", err))
	}
	env.Log.Info("watching", "metrics", "http://"+svc.Addr()+"/metrics")
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	go func() {
		select {
		case <-env.Force:
			cancel()
		case <-stopCtx.Done():
		}
	}()
	if err := svc.Stop(stopCtx); err != nil {
		return exitWith(ExitUnknown, fmt.Errorf("stop: %w", err))
	}
	return nil
}
