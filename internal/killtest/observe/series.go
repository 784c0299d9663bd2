package observe

// series is an append-only sequence with bounded memory: when it reaches its cap it drops every
// other point and from then on keeps one point in stride, doubling the stride each time.
type series[T any] struct {
	pts    []T
	cap    int
	stride int
	skip   int
}

func newSeries[T any](capacity int) *series[T] {
	return &series[T]{cap: max(capacity, 2), stride: 1}
}

func (s *series[T]) add(v T) {
	if s.skip > 0 {
		s.skip--
		return
	}
	s.pts = append(s.pts, v)
	s.skip = s.stride - 1
	if len(s.pts) >= s.cap {
		n := 0
		for i := 0; i < len(s.pts); i += 2 {
			s.pts[n] = s.pts[i]
			n++
		}
		clear(s.pts[n:])
		s.pts = s.pts[:n]
		s.stride *= 2
		s.skip = s.stride - 1
	}
}

func (s *series[T]) snapshot() []T { return append([]T(nil), s.pts...) }
