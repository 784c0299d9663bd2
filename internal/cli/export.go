package cli

import (
	"context"
	"errors"
)

// exportCommand is a placeholder until the owner of this subcommand writes it.
func exportCommand() command {
	return command{name: "export", summary: "(not yet built)", run: func(ctx context.Context, env *Env, args []string) error {
		return errors.New("export: not built yet")
	}}
}
