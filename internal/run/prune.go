package run

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/proxyline/proxyline/internal/lifecycle"
	"github.com/proxyline/proxyline/internal/pool"
	"github.com/proxyline/proxyline/internal/queue"
)

// pruner deletes history beyond the retention ([retention]) in the background: every interval,
// steps of at most batch rows (by age) or batch proxies (rows per proxy), each its own short
// statement, so the checks' writes go in between and are never blocked for long.
type pruner struct {
	cfg   RetentionConfig
	store *queue.Store
	now   func() time.Time
	log   *slog.Logger

	life lifecycle.Once
	stop chan struct{}
	done chan struct{}
	work context.CancelFunc
}

func newPruner(cfg RetentionConfig, store *queue.Store, log *slog.Logger) *pruner {
	return &pruner{cfg: cfg, store: store, now: time.Now, log: log, stop: make(chan struct{}), done: make(chan struct{})}
}

func (p *pruner) Start(ctx context.Context) error {
	return p.life.Start(func() error {
		work, cancel := context.WithCancel(context.WithoutCancel(ctx))
		p.work = cancel
		go p.loop(work)
		return nil
	})
}

// Stop stops pruning: no new step starts; the step in progress (one statement) finishes while
// ctx lives and is cancelled when it ends. Nothing is lost either way: a step is one statement.
func (p *pruner) Stop(ctx context.Context) error {
	return p.life.Stop(ctx, func(cut context.Context) error {
		close(p.stop)
		var err error
		select {
		case <-p.done:
		case <-cut.Done():
			err = fmt.Errorf("pruner: stop cut short: %w", context.Cause(cut))
		}
		p.work()
		<-p.done
		return err
	})
}

func (p *pruner) loop(ctx context.Context) {
	defer close(p.done)
	t := time.NewTicker(p.cfg.Interval.D())
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		byAge, byCount, err := p.once(ctx)
		if err != nil && ctx.Err() == nil {
			p.log.Warn("prune history", "err", err)
		}
		if byAge+byCount > 0 {
			p.log.Info("history pruned", "older_than_max_age", byAge, "beyond_max_rows", byCount)
		}
	}
}

func (p *pruner) stopped() bool {
	select {
	case <-p.stop:
		return true
	default:
		return false
	}
}

// once runs one full pass: by age, then by rows per proxy; it returns early on Stop.
func (p *pruner) once(ctx context.Context) (byAge, byCount int64, err error) {
	if p.cfg.MaxAge > 0 {
		cutoff := p.now().Add(-p.cfg.MaxAge.D())
		for !p.stopped() {
			n, err := pool.PruneOlder(ctx, p.store.DB(), cutoff, p.cfg.Batch)
			byAge += n
			if err != nil {
				return byAge, byCount, err
			}
			if n < int64(p.cfg.Batch) {
				break
			}
		}
	}
	if p.cfg.MaxRowsPerProxy > 0 {
		var cur pool.PruneCursor
		for !p.stopped() {
			n, next, err := pool.PruneExcess(ctx, p.store.DB(), p.cfg.MaxRowsPerProxy, cur, p.cfg.Batch)
			byCount += n
			if err != nil {
				return byAge, byCount, err
			}
			if next == (pool.PruneCursor{}) {
				break
			}
			cur = next
		}
	}
	return byAge, byCount, nil
}
