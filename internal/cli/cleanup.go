package cli

import (
	"context"
	"errors"
)

// cleanupCommand is a placeholder until the owner of this subcommand writes it.
func cleanupCommand() command {
	return command{name: "cleanup", summary: "(not yet built)", run: func(ctx context.Context, env *Env, args []string) error {
		return errors.New("cleanup: not built yet")
	}}
}
