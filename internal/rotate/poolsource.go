package rotate

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/proxyline/proxyline/internal/pool"
	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/internal/secret"
	"github.com/proxyline/proxyline/proxy"
)

// fullReload is how often the pool source reads the whole live set even when its version did not
// move (a late result older than the newest one does not move it).
const fullReload = time.Minute

// poolSource publishes the pool's live proxies, re-reading them when the pool's version moves,
// and records the failures the rotator sees in proxyline_passive.
type poolSource struct {
	s     *Server
	store *queue.Store

	mu       sync.Mutex // guards the fields below; poll runs from one goroutine, the rest from many
	version  pool.Version
	loadedAt time.Time
	keys     map[string][2]string // proxy string -> (addr, scheme) of its pool row
	why      string               // why the last read failed ("" when it worked)

	reports chan pool.PassiveFailure
	dropped atomic.Int64
	stop    chan struct{}
	done    chan struct{}
}

func openPool(ctx context.Context, s *Server) (*poolSource, error) {
	st, err := queue.Open(ctx, queue.Config{Database: s.cfg.Database, Access: queue.Existing, Logger: s.log})
	if err != nil {
		return nil, err
	}
	p := &poolSource{s: s, store: st, reports: make(chan pool.PassiveFailure, 1024),
		stop: make(chan struct{}), done: make(chan struct{})}
	p.load(ctx)
	go p.reportLoop()
	return p, nil
}

func (p *poolSource) name() string { return "pool " + p.store.Name() }

func (p *poolSource) poll(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, p.s.cfg.Refresh+5*time.Second)
	defer cancel()
	v, err := pool.LiveVersion(ctx, p.store.DB())
	if err != nil {
		p.failed(err)
		return
	}
	p.mu.Lock()
	fresh := v == p.version && time.Since(p.loadedAt) < fullReload
	p.mu.Unlock()
	if !fresh {
		p.load(ctx)
	}
}

// load reads the live proxies and publishes them.
func (p *poolSource) load(ctx context.Context) {
	v, err := pool.LiveVersion(ctx, p.store.DB())
	if err != nil {
		p.failed(err)
		return
	}
	entries, err := pool.List(ctx, p.store.DB(), false)
	if err != nil {
		p.failed(err)
		return
	}
	ps := make([]proxy.Proxy, 0, len(entries))
	seed := make(map[string]time.Duration, len(entries))
	keys := make(map[string][2]string, len(entries))
	for _, e := range entries {
		pr, err := proxy.Parse(e.Proxy)
		if err != nil || pr.Scheme == proxy.Unknown {
			continue // not usable as an upstream (a row written by hand?)
		}
		k := pr.String()
		ps = append(ps, pr)
		seed[k] = e.Total
		keys[k] = [2]string{e.Addr, e.Scheme}
	}
	added, removed := p.s.publish(ps, seed)
	p.mu.Lock()
	p.version, p.loadedAt, p.keys, p.why = v, time.Now(), keys, ""
	p.mu.Unlock()
	if added > 0 || removed > 0 {
		p.s.log.Info("upstreams loaded", "from", "pool", "upstreams", len(ps), "added", added, "removed", removed)
	}
}

// failed keeps the current set after a failed read of the pool, logging each new reason once.
func (p *poolSource) failed(err error) {
	why := secret.Redact(err.Error())
	p.mu.Lock()
	defer p.mu.Unlock()
	if why != p.why {
		p.s.log.Warn("cannot read the pool; keeping the current upstreams", "err", why, "upstreams", len(p.s.set.Load().list))
	}
	p.why = why
}

func (p *poolSource) empty() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.why != "" {
		return "cannot read the pool: " + p.why
	}
	return fmt.Sprintf("the pool (%s) has no live proxy", p.store.Name())
}

// report queues a passive failure for the pool; when the queue is full it is counted and dropped
// rather than slowing requests down.
func (p *poolSource) report(u *upstream, err string) {
	p.mu.Lock()
	k, ok := p.keys[u.key]
	p.mu.Unlock()
	if !ok {
		return
	}
	select {
	case p.reports <- pool.PassiveFailure{Addr: k[0], Scheme: k[1], At: time.Now(), Err: err}:
	default:
		p.dropped.Add(1)
	}
}

// reportLoop writes queued failures in batches, every Refresh, until close.
func (p *poolSource) reportLoop() {
	defer close(p.done)
	t := time.NewTicker(p.s.cfg.Refresh)
	defer t.Stop()
	var batch []pool.PassiveFailure
	for {
		select {
		case f := <-p.reports:
			batch = append(batch, f)
			continue
		case <-t.C:
		case <-p.stop:
			for {
				select {
				case f := <-p.reports:
					batch = append(batch, f)
					continue
				default:
				}
				break
			}
			p.write(batch)
			return
		}
		batch = p.write(batch)
	}
}

func (p *poolSource) write(batch []pool.PassiveFailure) []pool.PassiveFailure {
	if len(batch) == 0 {
		return batch
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := pool.RecordPassive(ctx, p.store.DB(), batch); err != nil {
		p.s.log.Warn("cannot record passive failures in the pool", "failures", len(batch), "err", secret.Redact(err.Error()))
	}
	if n := p.dropped.Swap(0); n > 0 {
		p.s.log.Warn("passive failures dropped (the pool writes fell behind)", "dropped", n)
	}
	return batch[:0]
}

func (p *poolSource) close() {
	close(p.stop)
	<-p.done
	p.store.Close()
}
