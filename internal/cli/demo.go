package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/proxyline/proxyline/internal/demo"
)

// demoFlags binds the flags of proxyline demo to demo.Options.
func demoFlags(fs *flag.FlagSet, o *demo.Options) {
	fs.StringVar(&o.Dir, "dir", "", "directory for the SQLite database and the lab's files (default: a new temporary directory, kept afterwards)")
	fs.IntVar(&o.Workers, "workers", 2, "worker processes")
	fs.IntVar(&o.Per, "per-kind", 10, "lab proxies of each kind (live HTTP/SOCKS, liars, transparent, blackholes, ...)")
	fs.IntVar(&o.Chunk, "chunk", 10, "proxies per job")
	fs.DurationVar(&o.Timeout, "t", 3*time.Second, "timeout of one check")
	fs.DurationVar(&o.Wait, "wait", 2*time.Minute, "how long the queue may take to drain")
}

func demoCommand() command {
	return command{
		Name:    "demo",
		Summary: "run the whole job against the loopback lab: queue on SQLite, worker processes, pool",
		Run: func(ctx context.Context, env *Env, args []string) error {
			var o demo.Options
			fs := newFlagSet("demo", "[flags]",
				"Starts the loopback lab, enqueues its proxies on a SQLite queue, runs worker processes until the\n"+
					"queue is drained, stops them gracefully, and prints the pool's live proxies (stdout), the status\n"+
					"and a comparison with the lab's truth (stderr). Nothing leaves the machine. It runs the same\n"+
					"commands a user would: enqueue, worker, status, export.")
			demoFlags(fs, &o)
			if err := parseOptions(fs, env, args, &o); err != nil {
				return err
			}
			err := demo.Run(ctx, demo.IO{Stdout: env.Stdout, Stderr: env.Stderr, Log: env.Log, Run: subCommands(env)}, o)
			if errors.Is(err, demo.ErrMismatch) {
				return failure(err)
			}
			return err
		},
	}
}

// subCommands runs proxyline's own commands in-process, with env but for stdout: the demo's way
// of doing what a user would type.
func subCommands(env *Env) demo.Commands {
	return func(ctx context.Context, stdout io.Writer, args ...string) error {
		e := *env
		e.Stdout = stdout
		if code := run(ctx, &e, args); code != ExitOK {
			return fmt.Errorf("proxyline %s: exit %d", args[0], code)
		}
		return nil
	}
}
