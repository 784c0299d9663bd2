package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/proxyline/proxyline/internal/supervise"
)

// cleanupOptions are the flags of `proxyline cleanup`.
type cleanupOptions struct {
	DryRun       bool
	JSON         bool
	CgroupParent string
}

// Validate checks the options.
func (o cleanupOptions) Validate() error {
	if o.CgroupParent != "" && !strings.HasPrefix(o.CgroupParent, "/") {
		return usageError("--cgroup-parent %q: want an absolute path", o.CgroupParent)
	}
	return nil
}

// cleanupCommand finds and stops what dead proxyline supervisors left behind: processes that
// carry a task cookie whose owner is gone, and their stale task cgroups. It never touches a
// process without a cookie. Exit 0 when nothing was found or everything found was stopped, 1
// when a dry run found something or something could not be stopped.
func cleanupCommand() command {
	return command{
		Name:    "cleanup",
		Summary: "find and stop task processes and cgroups left by dead workers",
		Run: func(ctx context.Context, env *Env, args []string) error {
			var o cleanupOptions
			fs := newFlagSet("cleanup", "[--dry-run] [--json]",
				"Finds processes carrying a proxyline task cookie whose owner (pid and start time) is gone, and\n"+
					"task cgroups of dead workers, and stops them (SIGTERM, grace, SIGKILL; cgroup.kill). Processes\n"+
					"without a cookie are never touched. Exit 0: nothing left; 1: found (dry run) or not stoppable.")
			fs.BoolVar(&o.DryRun, "dry-run", false, "list leftovers with evidence, touch nothing")
			fs.BoolVar(&o.JSON, "json", false, "print the report as JSON")
			fs.StringVar(&o.CgroupParent, "cgroup-parent", "", "cgroup v2 directory holding worker cgroups (default: detected)")
			if err := parseOptions(fs, env, args, &o); err != nil {
				return err
			}
			rep, err := supervise.Sweep(ctx, supervise.SweepConfig{DryRun: o.DryRun, CgroupParent: o.CgroupParent, Log: env.Log})
			if perr := printCleanup(env, o, rep); perr != nil {
				return errors.Join(err, perr)
			}
			if err != nil {
				return failure(err)
			}
			if o.DryRun && len(rep.Processes)+len(rep.Cgroups) > 0 {
				return failure(fmt.Errorf("found %d leftover processes and %d stale cgroups", len(rep.Processes), len(rep.Cgroups)))
			}
			return nil
		},
	}
}

func printCleanup(env *Env, o cleanupOptions, rep supervise.SweepReport) error {
	if o.JSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
		return nil
	}
	if len(rep.Processes)+len(rep.Cgroups) == 0 {
		_, err := fmt.Fprintln(env.Stdout, "nothing left behind")
		return err
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	if len(rep.Processes) > 0 {
		fmt.Fprintln(tw, "PID\tSTARTED\tAGE\tSTATE\tOWNER\tCGROUP\tACTION\tCMDLINE")
		for _, p := range rep.Processes {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.PID, p.Started.UTC().Format("2006-01-02T15:04:05Z"),
				p.Age, p.State, p.Owner, p.Cgroup, p.Action, strings.Join(p.Cmdline, " "))
		}
	}
	if err := tw.Flush(); err != nil { // each table aligns on its own
		return fmt.Errorf("write report: %w", err)
	}
	if len(rep.Cgroups) > 0 {
		fmt.Fprintln(tw, "CGROUP\tOWNER\tPROCS\tACTION")
		for _, c := range rep.Cgroups {
			fmt.Fprintf(tw, "%s\t%s\t%v\t%s\n", c.Path, c.Owner, c.Procs, c.Action)
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}
