package cli

import (
	"context"
	"errors"
)

// judgeCommand is a placeholder until the owner of this subcommand writes it.
func judgeCommand() command {
	return command{name: "judge", summary: "(not yet built)", run: func(ctx context.Context, env *Env, args []string) error {
		return errors.New("judge: not built yet")
	}}
}
