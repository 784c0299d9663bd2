package rotate

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/lab"
	"github.com/proxyline/proxyline/internal/testkit"
)

// writeLog is a ResponseWriter that records what the handler does to it, in order: "head 200",
// "write N", "flush". It stands where net/http's writer is, to see where the flushes fall.
type writeLog struct {
	mu     sync.Mutex
	header http.Header
	events []string
}

func (w *writeLog) Header() http.Header { return w.header }

func (w *writeLog) WriteHeader(code int) { w.add("head " + http.StatusText(code)) }

func (w *writeLog) Write(p []byte) (int, error) {
	w.add("write " + strings.Repeat("x", min(len(p), 3)))
	return len(p), nil
}

func (w *writeLog) Flush() { w.add("flush") }

func (w *writeLog) add(e string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.events = append(w.events, e)
}

func (w *writeLog) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.events, ", ")
}

// TestHeadGoesWithBody: a response whose body is there with its head leaves the rotator in one
// write, head and body together, flushed once. (ReverseProxy's FlushInterval -1 flushed every
// head alone from a timer goroutine: two writes per response, and a goroutine.)
func TestHeadGoesWithBody(t *testing.T) {
	t.Parallel()
	l := startLab(t, lab.Config{HTTP: 2})
	s, _ := startServer(t, Config{}, l.Candidates())
	// A head timer that cannot fire during the test, however slow the machine: the order of the
	// writes is then exact.
	s.headDelay = time.Hour
	for i := range 40 {
		w := &writeLog{header: http.Header{}}
		s.ServeHTTP(w, httptest.NewRequest(http.MethodGet, l.BackendURL()+"bytes/3", nil))
		if got, want := w.String(), "head OK, write xxx, flush"; got != want {
			t.Fatalf("request %d: the rotator did %q, want %q", i, got, want)
		}
	}
}

// TestHeadBeforeSlowBody: the head of a response whose body is late reaches the client before
// the body (the origin holds its only byte until released).
func TestHeadBeforeSlowBody(t *testing.T) {
	t.Parallel()
	l := startLab(t, lab.Config{HTTP: 1})
	s, _ := startServer(t, Config{}, l.Candidates())
	c := client(s, "", "")
	defer c.CloseIdleConnections()
	var release sync.Once
	t.Cleanup(func() { release.Do(func() { l.Release("late") }) })
	type result struct {
		resp *http.Response
		err  error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := c.Get(l.BackendURL() + "bytes/1?hold=late")
		got <- result{resp, err}
	}()
	var r result
	testkit.WaitFor(t, 30*time.Second, "the head while the origin holds the body", func() bool {
		select {
		case r = <-got:
			return true
		default:
			return false
		}
	})
	release.Do(func() { l.Release("late") })
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.resp.Body.Close()
	if b, err := io.ReadAll(r.resp.Body); err != nil || len(b) != 1 {
		t.Fatalf("body %q %v", b, err)
	}
}
