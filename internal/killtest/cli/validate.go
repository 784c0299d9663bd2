package cli

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/proxyline/proxyline/internal/killtest/run"
)

// validateOptions are the flags of killtest validate.
type validateOptions struct {
	Bin string // directory searched first for programs, as for run
}

// Validate checks the options.
func (o *validateOptions) Validate() error {
	if o.Bin != "" {
		if fi, err := os.Stat(o.Bin); err != nil || !fi.IsDir() {
			return usageError("--bin %s: not a directory", o.Bin)
		}
	}
	return nil
}

func validateCommand() command {
	return command{Name: "validate", Summary: "check scenarios and what they need, without running anything", Run: func(ctx context.Context, env *Env, args []string) error {
		var o validateOptions
		fs := newFlagSet("validate", "[flags] FILE|DIR|NAME...", "Parse and check scenarios, and look for what a run would find missing: programs in needs,\n"+
			"the programs of components, setup and workload steps and probes (on the PATH a run uses,\n"+
			"--bin first), scripts given to interpreters, working directories. Nothing is started.\n"+
			"Every problem is printed as file:line: field: problem; exit 2 when there is one.")
		fs.StringVar(&o.Bin, "bin", "", "directory searched first for the system's programs (as for run)")
		if err := parseFlags(fs, env, args); err != nil {
			return err
		}
		if err := o.Validate(); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			return usageError("validate needs at least one scenario file, directory or built-in name")
		}
		scs, err := resolve(fs.Args())
		problems := 0
		if err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				fmt.Fprintln(env.Stdout, line)
				problems++
			}
		}
		for _, sc := range scs {
			errs := run.Preflight(sc, run.Options{Bin: o.Bin})
			for _, e := range errs {
				fmt.Fprintln(env.Stdout, e)
			}
			problems += len(errs)
			if len(errs) == 0 {
				fmt.Fprintf(env.Stdout, "ok %s (%s)\n", sc.File, sc.Name)
			}
		}
		if problems > 0 {
			return exitWith(ExitUnknown, fmt.Errorf("%d problem(s): a run would not be judged", problems))
		}
		return nil
	}}
}
