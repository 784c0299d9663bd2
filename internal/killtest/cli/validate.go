package cli

import (
	"context"
	"fmt"
)

func validateCommand() command {
	return command{Name: "validate", Summary: "check scenario files without running them", Run: func(ctx context.Context, env *Env, args []string) error {
		fs := newFlagSet("validate", "FILE|DIR|NAME...", "Parse and check scenarios; every problem is reported as file:line: field: message.")
		if err := parseFlags(fs, env, args); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			return usageError("validate needs at least one scenario file")
		}
		scs, err := resolve(fs.Args())
		if err != nil {
			return exitWith(ExitUnknown, err)
		}
		for _, sc := range scs {
			fmt.Fprintf(env.Stdout, "ok %s (%s)\n", sc.File, sc.Name)
		}
		return nil
	}}
}
