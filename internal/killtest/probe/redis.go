package probe

import (
	"context"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Redis sums op (llen, hlen, zcard, scard) over keys on the server at addr (default
// 127.0.0.1:6379), database db. A missing key counts 0, as in Redis.
func Redis(ctx context.Context, addr string, db int, op string, keys []string) (float64, error) {
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	c := redis.NewClient(&redis.Options{Addr: addr, DB: db, MaxRetries: 1})
	defer c.Close()
	pipe := c.Pipeline()
	cmds := make([]*redis.IntCmd, len(keys))
	for i, k := range keys {
		switch strings.ToLower(op) {
		case "llen":
			cmds[i] = pipe.LLen(ctx, k)
		case "hlen":
			cmds[i] = pipe.HLen(ctx, k)
		case "zcard":
			cmds[i] = pipe.ZCard(ctx, k)
		case "scard":
			cmds[i] = pipe.SCard(ctx, k)
		default:
			return 0, fmt.Errorf("redis probe: unknown op %q (want llen, hlen, zcard, scard)", op)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("redis probe: %s %v on %s: %w", op, keys, addr, err)
	}
	var sum int64
	for _, c := range cmds {
		sum += c.Val()
	}
	return float64(sum), nil
}
