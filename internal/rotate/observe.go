package rotate

import (
	"sync"
	"time"
)

// Observer is told of every attempt through an upstream, for per-upstream metrics (proxyline
// run wires internal/metrics to it). The rotator asks it once per upstream for that upstream's
// recorder, so an attempt costs one interface call on a recorder resolved beforehand: no map
// lookup, no allocation and no lock of the rotator's on the request path.
type Observer interface {
	// Upstream returns the recorder of the upstream labelled label (scheme://host:port, never
	// credentials). It is called the first time that upstream is used; it may return the same
	// recorder for many labels (a bound on the label set).
	Upstream(label string) AttemptRecorder
}

// AttemptRecorder records the attempts through one upstream.
type AttemptRecorder interface {
	// Attempt records one attempt: a request (to its response head) or a tunnel's dial, that
	// took took and failed with err (nil: it worked). A failure is recorded whatever its
	// cause: the upstream, the target behind it, or the client leaving.
	Attempt(took time.Duration, err error)
}

// upstreamObs is an upstream's recorder, resolved on first use.
type upstreamObs struct {
	once sync.Once
	rec  AttemptRecorder
}

// observe records an attempt through u that began at start, if an Observer is configured.
func (s *Server) observe(u *upstream, start time.Time, err error) {
	o := s.cfg.Observer
	if o == nil {
		return
	}
	u.obs.once.Do(func() { u.obs.rec = o.Upstream(u.label) })
	if u.obs.rec != nil {
		u.obs.rec.Attempt(time.Since(start), err)
	}
}
