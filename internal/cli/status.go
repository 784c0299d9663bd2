package cli

import (
	"context"
	"errors"
)

// statusCommand is a placeholder until the owner of this subcommand writes it.
func statusCommand() command {
	return command{name: "status", summary: "(not yet built)", run: func(ctx context.Context, env *Env, args []string) error {
		return errors.New("status: not built yet")
	}}
}
