package rotate

import (
	"container/list"
	"sync"
	"time"
)

// stickyMap binds session keys to upstreams for a fixed lifetime from the binding's creation,
// holding at most max bindings (the least recently used goes first).
type stickyMap struct {
	ttl int64 // nanoseconds
	max int

	mu  sync.Mutex               // guards m and lru
	m   map[string]*list.Element // guarded by mu; values are *stickyEntry
	lru *list.List               // guarded by mu; front = most recently used
}

type stickyEntry struct {
	key     string
	up      *upstream
	expires int64 // unix nanoseconds
}

func newStickyMap(ttl time.Duration, max int) *stickyMap {
	return &stickyMap{ttl: int64(ttl), max: max, m: map[string]*list.Element{}, lru: list.New()}
}

// get returns the upstream bound to key, or nil when there is none or it expired.
func (m *stickyMap) get(key string, now int64) *upstream {
	m.mu.Lock()
	defer m.mu.Unlock()
	el, ok := m.m[key]
	if !ok {
		return nil
	}
	e := el.Value.(*stickyEntry)
	if e.expires <= now {
		m.lru.Remove(el)
		delete(m.m, key)
		return nil
	}
	m.lru.MoveToFront(el)
	return e.up
}

// put binds key to u. A new binding (or a binding moved to another upstream, because the old one
// was benched or failed) gets a full lifetime.
func (m *stickyMap) put(key string, u *upstream, now int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if el, ok := m.m[key]; ok {
		e := el.Value.(*stickyEntry)
		if e.up != u {
			e.up, e.expires = u, now+m.ttl
		}
		m.lru.MoveToFront(el)
		return
	}
	m.m[key] = m.lru.PushFront(&stickyEntry{key: key, up: u, expires: now + m.ttl})
	for m.lru.Len() > m.max {
		old := m.lru.Back()
		m.lru.Remove(old)
		delete(m.m, old.Value.(*stickyEntry).key)
	}
}

// len returns the number of bindings.
func (m *stickyMap) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lru.Len()
}
