package cli

import (
	"context"
	"fmt"
	"strings"
)

func listCommand() command {
	return command{Name: "list", Summary: "list the built-in scenarios", Run: func(ctx context.Context, env *Env, args []string) error {
		fs := newFlagSet("list", "", "List the built-in scenarios (run with `killtest run NAME`, or all with `killtest run`).")
		if err := parseFlags(fs, env, args); err != nil {
			return err
		}
		if fs.NArg() > 0 {
			return usageError("list takes no arguments")
		}
		all, err := builtins()
		if err != nil {
			return err
		}
		for _, sc := range all {
			desc, _, _ := strings.Cut(strings.TrimSpace(sc.Description), "\n")
			needs := ""
			if len(sc.Needs) > 0 {
				needs = " [needs " + strings.Join(sc.Needs, ", ") + "]"
			}
			fmt.Fprintf(env.Stdout, "%-28s %s%s\n", sc.Name, desc, needs)
		}
		return nil
	}}
}
