package external

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"syscall"

	"github.com/proxyline/proxyline/proxy"
)

// Bounds on what is read of a tool's report ({out} or stdout): a tool may write anything, but
// the worker's memory and time stay bounded by its chunk.
const (
	minJunk       = 1000     // reports that add nothing tolerated per run, at least...
	junkPerProxy  = 10       // ...or this many per proxy of the chunk
	reportBytes   = 16 << 20 // bytes read of a report, plus...
	bytesPerProxy = 16 << 10 // ...this many per proxy of the chunk
	maxStripLine  = 64 << 10 // a stdout line longer than this is passed on without escape removal
)

// errReportTooLong stops the reading of a report past its bounds.
var errReportTooLong = errors.New("report too long")

// ansiRE matches terminal escape sequences (CSI such as colours, OSC such as titles, and the
// two-byte escapes) that tools print on a terminal. A regexp is enough for stripping them; the
// libraries that parse terminal streams fully are made for emulators, not for this.
var ansiRE = regexp.MustCompile(`\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])`)

// stripANSI removes terminal escape sequences.
func stripANSI(b []byte) []byte {
	if bytes.IndexByte(b, 0x1b) < 0 {
		return b
	}
	return ansiRE.ReplaceAll(b, nil)
}

// report reads what a tool reported, matching each proxy against the chunk as it is read and
// keeping nothing else but counts, so that its memory is that of the chunk whatever the tool
// writes. Reading stops (errReportTooLong) after maxJunk reports that add nothing (a proxy not in
// the chunk, a repeat, a line that is not a proxy) or after maxBytes bytes.
type report struct {
	m               *matcher
	maxJunk         int
	maxBytes        int64
	junk            int
	bytes           int64
	unexpected      int
	firstUnexpected proxy.Proxy
	badLines        int
	firstBad        string
	over            string // why reading stopped early, "" if it did not
}

func newReport(chunk []proxy.Proxy) *report {
	return &report{
		m:        newMatcher(chunk),
		maxJunk:  max(minJunk, junkPerProxy*len(chunk)),
		maxBytes: reportBytes + bytesPerProxy*int64(len(chunk)),
	}
}

func (r *report) onProxy(p proxy.Proxy) {
	in, fresh := r.m.add(p)
	if !in {
		if r.unexpected == 0 {
			r.firstUnexpected = p
		}
		r.unexpected++
	}
	if !fresh {
		r.addJunk()
	}
}

func (r *report) onError(e *proxy.LineError) {
	if r.badLines == 0 { // where and why, without the text: a tool's line may hold a password
		e2 := *e
		e2.Text = ""
		if e2.Field == "" {
			e2.Field = "line"
		}
		r.firstBad = e2.Error()
	}
	r.badLines++
	r.addJunk()
}

func (r *report) addJunk() {
	r.junk++
	if r.junk > r.maxJunk && r.over == "" {
		r.over = fmt.Sprintf("more than %d lines that are not live proxies of its chunk of %d", r.maxJunk, r.m.size)
	}
}

// Read reads from the underlying report, counting bytes, and fails once reading must stop.
func (r *report) reader(src io.Reader) io.Reader {
	return readerFunc(func(p []byte) (int, error) {
		if r.over != "" {
			return 0, errReportTooLong
		}
		n, err := src.Read(p)
		r.bytes += int64(n)
		if r.bytes > r.maxBytes && r.over == "" {
			r.over = fmt.Sprintf("more than %d bytes for a chunk of %d", r.maxBytes, r.m.size)
		}
		return n, err
	})
}

type readerFunc func(p []byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// scan reads a report from src; name names it in errors and messages.
func (r *report) scan(src io.Reader, name string) error {
	err := proxy.Scan(r.reader(src), name, proxy.Auto, r.onProxy, r.onError)
	if errors.Is(err, errReportTooLong) || r.over != "" {
		return fmt.Errorf("%w: %s has %s; stopped reading it", ErrFailed, name, r.over)
	}
	return err
}

// scanFile reads the report the tool wrote to path. A missing file is an empty report. The file
// must be a regular file: a symbolic link is not followed, and a FIFO cannot block us.
func (r *report) scanFile(path, name string) error {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: open %s: %w", ErrFailed, name, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: %s is not a regular file", ErrFailed, name)
	}
	return r.scan(f, name)
}

// lineFeed is the tool's stdout as an io.Writer: it cuts the stream into lines, removes terminal
// escapes from each and hands them to a report read in its own goroutine. Write never fails and
// never blocks for longer than the report takes to parse what it was given; once the report
// stops reading, the rest is dropped.
type lineFeed struct {
	pw   *io.PipeWriter
	line []byte
	dead bool
	done chan error
}

func newLineFeed(r *report, name string) *lineFeed {
	pr, pw := io.Pipe()
	f := &lineFeed{pw: pw, done: make(chan error, 1)}
	go func() {
		err := r.scan(pr, name)
		pr.CloseWithError(errReportTooLong) // later writes fail at once
		f.done <- err
	}()
	return f
}

func (f *lineFeed) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			f.line = append(f.line, p...)
			if len(f.line) > maxStripLine {
				f.flush()
			}
			break
		}
		f.line = append(f.line, p[:i+1]...)
		f.flush()
		p = p[i+1:]
	}
	return n, nil
}

func (f *lineFeed) flush() {
	if !f.dead && len(f.line) > 0 {
		if _, err := f.pw.Write(stripANSI(f.line)); err != nil {
			f.dead = true
		}
	}
	f.line = f.line[:0]
}

// Close ends the stream and returns the report's error once it has read everything.
func (f *lineFeed) Close() error {
	f.flush()
	f.pw.Close()
	return <-f.done
}

// prefix keeps the first limit bytes written to it and drops the rest (the start of a tool's
// error output, for an error message).
type prefix struct {
	buf   []byte
	limit int
}

func (p *prefix) Write(b []byte) (int, error) {
	if room := p.limit - len(p.buf); room > 0 {
		p.buf = append(p.buf, b[:min(room, len(b))]...)
	}
	return len(b), nil
}

// matcher keeps the reported proxies that were in the chunk. A report matches a proxy of the
// chunk when it is equal, or has the same address and
//   - the same scheme, or either has none (a tool that probed a bare host:port reports the
//     scheme it found, which the returned proxy then carries; one that writes host:port for a
//     scheme://host:port is also understood), and
//   - the same credentials, or none (tools may leave them out).
//
// Each proxy of the chunk is kept at most once, at the place of its first report (with the
// scheme of a later report if the first had none). Its memory is that of the chunk.
type matcher struct {
	size   int
	exact  map[proxy.Proxy]bool
	byAddr map[string][]proxy.Proxy
	at     map[proxy.Proxy]int // chunk proxy → its index in live
	live   []proxy.Proxy
}

func newMatcher(chunk []proxy.Proxy) *matcher {
	m := &matcher{
		size:   len(chunk),
		exact:  make(map[proxy.Proxy]bool, len(chunk)),
		byAddr: make(map[string][]proxy.Proxy, len(chunk)),
		at:     map[proxy.Proxy]int{},
	}
	for _, p := range chunk {
		m.exact[p] = true
		m.byAddr[p.Key()] = append(m.byAddr[p.Key()], p)
	}
	return m
}

// add matches one report. in says it matched a proxy of the chunk; fresh that this proxy was not
// live yet.
func (m *matcher) add(r proxy.Proxy) (in, fresh bool) {
	c, ok := m.find(r)
	if !ok {
		return false, false
	}
	got := c
	if got.Scheme == proxy.Unknown {
		got.Scheme = r.Scheme
	}
	i, seen := m.at[c]
	switch {
	case !seen:
		m.at[c] = len(m.live)
		m.live = append(m.live, got)
	case m.live[i].Scheme == proxy.Unknown:
		m.live[i] = got // a later report gave the scheme
	}
	return true, !seen
}

// find returns the proxy of the chunk a report stands for.
func (m *matcher) find(r proxy.Proxy) (proxy.Proxy, bool) {
	if m.exact[r] {
		return r, true
	}
	var best proxy.Proxy
	found := false
	for _, c := range m.byAddr[r.Key()] {
		if (r.User != "" || r.Password != "") && (r.User != c.User || r.Password != c.Password) {
			continue
		}
		if c.Scheme != r.Scheme && c.Scheme != proxy.Unknown && r.Scheme != proxy.Unknown {
			continue
		}
		if !found || c.Scheme == r.Scheme {
			best, found = c, true
		}
	}
	return best, found
}

// match matches a whole report at once: the live proxies, and the reports that matched nothing.
func match(chunk, reported []proxy.Proxy) (live, unexpected []proxy.Proxy) {
	m := newMatcher(chunk)
	for _, r := range reported {
		if in, _ := m.add(r); !in {
			unexpected = append(unexpected, r)
		}
	}
	return m.live, unexpected
}
