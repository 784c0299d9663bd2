package run

import (
	"bufio"
	"io"
	"os"
	"regexp"
	"sync"
)

// maxKeptLines bounds the lines a hub keeps in memory (the log file has all of them).
const maxKeptLines = 5000

// lineHub collects the output lines of one component (across restarts) and wakes waiters whose
// regex matches a line, as the lines arrive.
type lineHub struct {
	mu      sync.Mutex
	lines   []string      // guarded by mu: the last maxKeptLines lines
	total   int           // guarded by mu: lines ever added
	waiters []*lineWaiter // guarded by mu
}

type lineWaiter struct {
	re *regexp.Regexp
	ch chan string // buffered 1: the first matching line
}

// count returns how many lines were added so far: a position for wait's since.
func (h *lineHub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.total
}

func (h *lineHub) add(line string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.total++
	h.lines = append(h.lines, line)
	if len(h.lines) > maxKeptLines {
		h.lines = append(h.lines[:0], h.lines[len(h.lines)-maxKeptLines:]...)
	}
	kept := h.waiters[:0]
	for _, w := range h.waiters {
		if w.re.MatchString(line) {
			w.ch <- line
			continue
		}
		kept = append(kept, w)
	}
	h.waiters = kept
}

// wait returns a channel that receives the first line at position ≥ since matching re (lines
// already added are checked first), and a function to stop waiting.
func (h *lineHub) wait(re *regexp.Regexp, since int) (<-chan string, func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	w := &lineWaiter{re: re, ch: make(chan string, 1)}
	first := h.total - len(h.lines)
	for i := max(since-first, 0); i < len(h.lines); i++ {
		if re.MatchString(h.lines[i]) {
			w.ch <- h.lines[i]
			return w.ch, func() {}
		}
	}
	h.waiters = append(h.waiters, w)
	return w.ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		for i, x := range h.waiters {
			if x == w {
				h.waiters = append(h.waiters[:i], h.waiters[i+1:]...)
				break
			}
		}
	}
}

// tail returns the last n lines.
func (h *lineHub) tail(n int) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.lines[max(len(h.lines)-n, 0):]...)
}

// pump reads lines from r into the hub and the log file until EOF or r is closed.
func pump(r io.Reader, h *lineHub, log *os.File) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if log != nil {
			_, _ = log.WriteString(line + "\n")
		}
		if h != nil {
			h.add(line)
		}
	}
}
