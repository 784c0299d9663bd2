package rotate

import (
	"context"
	"time"
)

// source supplies the upstreams: it publishes sets into the server and hears of failures.
type source interface {
	name() string                   // for logs: "pool (DB)" or the file path
	poll(ctx context.Context)       // look for a change and publish it; called every Refresh
	empty() string                  // why there is no upstream, for 503 answers
	report(u *upstream, err string) // a failure blamed on u (the pool records it)
	close()                         // stop: flush what is pending, release resources
}

// openSource opens the configured source and loads it once.
func (s *Server) openSource(ctx context.Context) (source, error) {
	if s.cfg.From == FromPool {
		return openPool(ctx, s)
	}
	return openFile(s)
}

// refreshLoop polls the source every Refresh until the server stops.
func (s *Server) refreshLoop() {
	t := time.NewTicker(s.cfg.Refresh)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.src.poll(s.ctx)
		case <-s.queue.done:
			return
		}
	}
}
