package cli

import (
	"context"
	"errors"
)

// workerCommand is a placeholder until the owner of this subcommand writes it.
func workerCommand() command {
	return command{name: "worker", summary: "(not yet built)", run: func(ctx context.Context, env *Env, args []string) error {
		return errors.New("worker: not built yet")
	}}
}
