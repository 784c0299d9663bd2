// Package probe measures the state of a system under test from the outside, for killtest's
// wait conditions, expectations and task history: a command probe (run a program, read a
// number or a JSON field from its stdout), an SQL probe (a count query on a SQLite file or a
// PostgreSQL database) and a Redis probe (LLEN, HLEN, ZCARD or SCARD of named keys, summed).
// Probes talk only to loopback; the scenario validation rejects anything else.
package probe

import (
	"context"
	"fmt"
	"time"

	"github.com/proxyline/proxyline/internal/killtest/scenario"
)

// Env is what a probe run gets from the runner.
type Env struct {
	// Environ is the environment of command probes (the harness's, with --bin on PATH).
	Environ []string
	// Dir is the working directory of command probes.
	Dir string
}

// Value measures p once.
func Value(ctx context.Context, p scenario.Probe, env Env) (float64, error) {
	switch {
	case p.Command != nil:
		c := p.Command
		return Command(ctx, CommandSpec{Argv: c.Command, Sh: c.Sh, JSON: c.JSON, Timeout: c.Timeout.Or(10 * time.Second), Env: env.Environ, Dir: env.Dir})
	case p.SQL != nil:
		return SQLCount(ctx, p.SQL.Driver, p.SQL.DSN, p.SQL.Query)
	case p.Redis != nil:
		return Redis(ctx, p.Redis.Addr, p.Redis.DB, p.Redis.Op, p.Redis.Keys)
	}
	return 0, fmt.Errorf("probe has no kind")
}
