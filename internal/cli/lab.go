package cli

import (
	"context"
	"errors"
)

// labCommand is a placeholder until the owner of this subcommand writes it.
func labCommand() command {
	return command{name: "lab", summary: "(not yet built)", run: func(ctx context.Context, env *Env, args []string) error {
		return errors.New("lab: not built yet")
	}}
}
