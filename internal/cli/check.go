package cli

import (
	"context"
	"errors"
)

// checkCommand is a placeholder until the owner of this subcommand writes it.
func checkCommand() command {
	return command{name: "check", summary: "(not yet built)", run: func(ctx context.Context, env *Env, args []string) error {
		return errors.New("check: not built yet")
	}}
}
