package rotate

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// errNoUpstream is wrapped by every "no upstream to use" answer: 503 (SOCKS5: general failure).
var errNoUpstream = errors.New("no upstream available")

// route is what a request carries into upstream selection. One route serves all the attempts of
// one request: start keeps the request's place in the rotation, so a retry does not take another
// slot of the counter (which would shift every later rotation window).
type route struct {
	session string      // sticky key ("" when none): "s:<user>:<name>" or "c:<ip>"
	started bool        // start is set
	start   int         // scan position chosen by the policy for this request
	tried   []*upstream // upstreams that failed this request
}

// pick returns the upstream for the next attempt of rt.
func (s *Server) pick(rt *route) (*upstream, error) {
	set := s.set.Load()
	if len(set.list) == 0 {
		return nil, fmt.Errorf("%w: %s", errNoUpstream, s.src.empty())
	}
	now := time.Now().UnixNano()
	if rt.session != "" {
		if u := s.sticky.get(rt.session, now); u != nil && u.usable(now) && set.byKey[u.key] == u && !slices.Contains(rt.tried, u) {
			return u, nil
		}
	}
	u := s.byPolicy(set, rt, now)
	if u == nil {
		return nil, s.allBenched(set, rt, now)
	}
	if rt.session != "" {
		s.sticky.put(rt.session, u, now)
	}
	return u, nil
}

// byPolicy scans the set from the policy's position for a usable upstream not yet tried.
func (s *Server) byPolicy(set *upstreamSet, rt *route, now int64) *upstream {
	n := len(set.list)
	if s.cfg.Policy == Fastest {
		return fastest(set, rt, now, int(s.counter.Add(1)))
	}
	if !rt.started {
		rt.started = true
		switch s.cfg.Policy {
		case Random:
			if s.cfg.RotateEvery == 1 {
				rt.start = rand.IntN(n)
			} else {
				w := (s.counter.Add(1) - 1) / uint64(s.cfg.RotateEvery)
				rt.start = int(mix(w^s.seed) % uint64(n))
			}
		default:
			w := (s.counter.Add(1) - 1) / uint64(s.cfg.RotateEvery)
			rt.start = int(w % uint64(n))
		}
	}
	for i := range n {
		u := set.list[(rt.start+i)%n]
		if u.usable(now) && !slices.Contains(rt.tried, u) {
			return u
		}
	}
	return nil
}

// fastest returns the usable, untried upstream with the lowest moving average of latency;
// unmeasured ones (0) come first, so that every upstream gets measured. Ties go to the first
// found scanning from offset, which rotates.
func fastest(set *upstreamSet, rt *route, now int64, offset int) *upstream {
	n := len(set.list)
	var best *upstream
	var bestLat int64
	for i := range n {
		u := set.list[(offset+i)%n]
		if !u.usable(now) || slices.Contains(rt.tried, u) {
			continue
		}
		if l := u.latency.Load(); best == nil || l < bestLat {
			best, bestLat = u, l
			if l == 0 {
				break
			}
		}
	}
	return best
}

// allBenched explains why no upstream is usable.
func (s *Server) allBenched(set *upstreamSet, rt *route, now int64) error {
	next := int64(0)
	for _, u := range set.list {
		if b := u.benchedUntil.Load(); b > now && (next == 0 || b < next) {
			next = b
		}
	}
	if next == 0 {
		return fmt.Errorf("%w: all %d upstreams failed for this request", errNoUpstream, len(set.list))
	}
	return fmt.Errorf("%w: %d upstreams, %d failed for this request and the others are benched (the next one is back in %v)",
		errNoUpstream, len(set.list), len(rt.tried), time.Duration(next-now).Round(time.Millisecond))
}

// mix is SplitMix64's finalizer: a window number to a well-spread pseudo-random value.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
