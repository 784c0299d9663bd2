package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/proxyline/proxyline/internal/supervise"
)

// cleanupOptions are the flags of `proxyline cleanup`.
type cleanupOptions struct {
	DryRun       bool
	JSON         bool
	CgroupParent string
	TempDir      string
	Owner        int
}

// Validate checks the options.
func (o cleanupOptions) Validate() error {
	if o.CgroupParent != "" && !strings.HasPrefix(o.CgroupParent, "/") {
		return usageError("--cgroup-parent %q: want an absolute path", o.CgroupParent)
	}
	if o.TempDir != "" && !filepath.IsAbs(o.TempDir) {
		return usageError("--temp-dir %q: want an absolute path", o.TempDir)
	}
	if o.Owner < 0 {
		return usageError("--owner %d: want a pid", o.Owner)
	}
	return nil
}

// cleanupCommand finds and stops what dead proxyline supervisors left behind: processes that
// carry a task cookie whose owner is gone, their stale task cgroups, and their task directories
// (--exec's chunk files, which hold proxy credentials). It never touches a process without a
// cookie, nor anything in the temporary directory but our own directories named exactly as
// task directories. Exit 0 when nothing was found or everything found was stopped or removed,
// 1 when a dry run found something or something could not be stopped or removed.
func cleanupCommand() command {
	return command{
		Name:    "cleanup",
		Summary: "find and stop task processes, cgroups and temporary directories left by dead workers",
		Run: func(ctx context.Context, env *Env, args []string) error {
			var o cleanupOptions
			fs := newFlagSet("cleanup", "[--dry-run] [--json] [--temp-dir DIR] [--owner PID]",
				"Finds processes carrying a proxyline task cookie whose owner (pid and start time) is gone,\n"+
					"task cgroups of dead workers, and the private temporary directories of their --exec runs\n"+
					"(proxyline-exec-*, holding proxy lists with credentials), and stops or removes them\n"+
					"(SIGTERM, grace, SIGKILL; cgroup.kill; removal without following links). Processes without\n"+
					"a cookie, and directories that are not ours, are never touched. Exit 0: nothing left; 1: found\n"+
					"(dry run) or not stoppable.")
			fs.BoolVar(&o.DryRun, "dry-run", false, "list leftovers with evidence, touch nothing")
			fs.BoolVar(&o.JSON, "json", false, "print the report as JSON")
			fs.StringVar(&o.CgroupParent, "cgroup-parent", "", "cgroup v2 directory holding worker cgroups (default: detected)")
			fs.StringVar(&o.TempDir, "temp-dir", "", "directory holding the workers' task directories (default: $TMPDIR, else /tmp; the workers' TMPDIR)")
			fs.IntVar(&o.Owner, "owner", 0, "only what the dead supervisor with this pid left (default: every dead one)")
			if err := parseOptions(fs, env, args, &o); err != nil {
				return err
			}
			rep, err := supervise.Sweep(ctx, supervise.SweepConfig{DryRun: o.DryRun, CgroupParent: o.CgroupParent,
				TempDir: o.TempDir, Owner: o.Owner, Log: env.Log})
			if perr := printCleanup(env, o, rep); perr != nil {
				return errors.Join(err, perr)
			}
			if err != nil {
				return failure(err)
			}
			if o.DryRun && rep.Found() > 0 {
				procs, cgroups, dirs := rep.Counts()
				return failure(fmt.Errorf("found %d leftover processes, %d stale cgroups and %d task directories", procs, cgroups, dirs))
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
	if len(rep.Processes)+len(rep.Cgroups)+len(rep.Dirs) == 0 {
		_, err := fmt.Fprintln(env.Stdout, "nothing left behind")
		return err
	}
	// Each table aligns on its own.
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	if len(rep.Processes) > 0 {
		fmt.Fprintln(tw, "PID\tSTARTED\tAGE\tSTATE\tOWNER\tCGROUP\tACTION\tCMDLINE")
		for _, p := range rep.Processes {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.PID, p.Started.UTC().Format("2006-01-02T15:04:05Z"),
				p.Age, p.State, p.Owner, p.Cgroup, p.Action, strings.Join(p.Cmdline, " "))
		}
		if err := tw.Flush(); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	}
	if len(rep.Cgroups) > 0 {
		fmt.Fprintln(tw, "CGROUP\tOWNER\tPROCS\tACTION")
		for _, c := range rep.Cgroups {
			fmt.Fprintf(tw, "%s\t%s\t%v\t%s\n", c.Path, c.Owner, c.Procs, c.Action)
		}
		if err := tw.Flush(); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	}
	if len(rep.Dirs) > 0 {
		fmt.Fprintln(tw, "DIRECTORY\tOWNER\tBYTES\tACTION")
		for _, d := range rep.Dirs {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", d.Path, d.Owner, d.Bytes, d.Action)
		}
		if err := tw.Flush(); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	}
	return nil
}
