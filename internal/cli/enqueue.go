package cli

import (
	"context"
	"errors"
)

// enqueueCommand is a placeholder until the owner of this subcommand writes it.
func enqueueCommand() command {
	return command{name: "enqueue", summary: "(not yet built)", run: func(ctx context.Context, env *Env, args []string) error {
		return errors.New("enqueue: not built yet")
	}}
}
