package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	svcrun "github.com/proxyline/proxyline/internal/run"
)

// runOptions are the flags of proxyline run.
type runOptions struct {
	config      string // --config FILE; "" = the defaults
	printConfig bool
	lab         bool
	labPerKind  int
	workers     int    // --workers N; -1 = from the config
	database    string // --database; "" = from the config

	cfg svcrun.Config // loaded by Validate
}

// Validate loads the configuration and applies the flags over it.
func (o *runOptions) Validate() error {
	if o.printConfig {
		return nil
	}
	if o.labPerKind < 1 || o.labPerKind > 1000 {
		return fmt.Errorf("--lab-per-kind %d: want 1-1000", o.labPerKind)
	}
	if o.workers < -1 || o.workers > 64 {
		return fmt.Errorf("--workers %d: want 0-64", o.workers)
	}
	cfg := svcrun.Default()
	if o.config != "" {
		var err error
		if cfg, err = svcrun.LoadConfig(o.config); err != nil {
			if errors.Is(err, fs.ErrPermission) {
				return err // a file we may not read: a runtime error (exit 3)
			}
			return usageError("%w", err)
		}
	}
	if o.workers >= 0 {
		cfg.Workers.Processes = o.workers
	}
	if o.database != "" {
		cfg.Database.URL = o.database
	}
	if err := cfg.Validate(o.configName()); err != nil {
		return usageError("%w", err)
	}
	o.cfg = cfg
	return nil
}

func (o *runOptions) configName() string {
	if o.config == "" {
		return "defaults"
	}
	return o.config
}

func runCommand() command {
	return command{
		Name:    "run",
		Summary: "run the whole service: scrape, schedule checks, workers, rotator, web UI, API and metrics",
		Run: func(ctx context.Context, env *Env, args []string) error {
			o := &runOptions{}
			fs := newFlagSet("run", "[flags]",
				"Runs proxyline as one long-lived service from a TOML configuration (--print-config shows every\n"+
					"key with its default): scrapes the sources on a schedule, checks new candidates first, re-checks\n"+
					"live proxies every interval and dead ones with back-off, serves the rotating proxy and the\n"+
					"console (web UI, JSON API, /metrics, River UI) on loopback. --lab starts the loopback lab and\n"+
					"points everything at it: a running pool with nothing installed and no traffic off the machine.\n"+
					"The first SIGTERM/SIGINT drains within shutdown.deadline (exit 0), a second one cuts. See docs/run.md.")
			fs.StringVar(&o.config, "config", "", "TOML configuration `file` (default: the built-in defaults)")
			fs.BoolVar(&o.printConfig, "print-config", false, "print the default configuration, every key with a comment, and exit")
			fs.BoolVar(&o.lab, "lab", false, "start the loopback lab and use its sources, judge and CA (the database goes to a temporary directory unless --database or the config names one)")
			fs.IntVar(&o.labPerKind, "lab-per-kind", 5, "with --lab: proxies of each lab kind")
			fs.IntVar(&o.workers, "workers", -1, "worker child processes under the supervisor (`N`; 0: checks in this process; default: workers.processes)")
			fs.Lookup("workers").DefValue = "0" // -1 means the config's value, as the text says
			fs.StringVar(&o.database, "database", "", "SQLite `file` or postgres:// URL, over database.url (a password is better in PROXYLINE_DATABASE)")
			if err := parseOptions(fs, env, args, o); err != nil {
				return err
			}
			if o.printConfig {
				_, err := env.Stdout.Write(svcrun.DefaultConfig())
				return err
			}
			return runService(ctx, env, o)
		},
	}
}

// runService starts the service, waits for the first signal, and stops it within the shutdown
// deadline (the second signal cuts at once). Its shutdown order is svcrun.Service.Stop's.
func runService(ctx context.Context, env *Env, o *runOptions) error {
	svc, err := svcrun.New(svcrun.Options{Config: o.cfg, Lab: o.lab, LabPerKind: o.labPerKind, Stderr: env.Stderr, Log: env.Log})
	if err != nil {
		return usageError("%w", err)
	}
	if err := svc.Start(ctx); err != nil {
		return err
	}
	if u := svc.ConsoleURL(); u != "" {
		fmt.Fprintf(env.Stdout, "console: %s\n", u)
	}
	if a := svc.RotatorAddr(); a != "" {
		fmt.Fprintf(env.Stdout, "rotator: http://%s (HTTP, CONNECT and SOCKS5)\n", a)
	}
	<-ctx.Done()
	deadline := o.cfg.Shutdown.Deadline.D()
	env.Log.Info("run stopping", "deadline", deadline)
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deadline)
	defer cancel()
	go func() {
		select {
		case <-env.Force:
			env.Log.Warn("second signal: cutting the shutdown short")
			cancel()
		case <-stopCtx.Done():
		}
	}()
	if err := svc.Stop(stopCtx); err != nil {
		return err
	}
	env.Log.Info("run stopped")
	return nil
}
