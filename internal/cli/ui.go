package cli

import (
	"context"
	"errors"
)

// uiCommand is a placeholder until the owner of this subcommand writes it.
func uiCommand() command {
	return command{name: "ui", summary: "(not yet built)", run: func(ctx context.Context, env *Env, args []string) error {
		return errors.New("ui: not built yet")
	}}
}
