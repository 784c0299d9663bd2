package rotate

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"
	"syscall"

	"github.com/proxyline/proxyline/internal/secret"
	"github.com/proxyline/proxyline/proxy"
)

// The file source is watched by polling its identity, not with inotify: a stat per Refresh is
// cheap, needs no dependency, and sees every way a list gets replaced (rename over it, a new
// inode, an editor's save, a truncate and rewrite in place, a file on a network file system
// where inotify says nothing) the same way. A watch on the file itself would be lost at the
// first rename-replace.

// fileStamp is what says a file changed: a rename-replace changes the inode, an in-place write
// the size or the times.
type fileStamp struct {
	dev, ino     uint64
	size         int64
	mtime, ctime int64
}

func stampOf(fi fs.FileInfo) fileStamp {
	st := fileStamp{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.dev, st.ino = uint64(sys.Dev), sys.Ino
		st.ctime = sys.Ctim.Sec*1e9 + sys.Ctim.Nsec
	}
	return st
}

// fileSource publishes the proxies of a list file; a file that is missing, empty or has a bad
// line is not taken: the last good set stays, and the reason is logged once per change.
type fileSource struct {
	s    *Server
	path string

	mu     sync.Mutex // guards last, lastOK and why; poll runs from one goroutine, empty from many
	last   fileStamp
	lastOK bool   // a set was taken from the file
	why    string // why the current file is not used ("" when it is)
}

func openFile(s *Server) (*fileSource, error) {
	f := &fileSource{s: s, path: s.cfg.From}
	fi, err := os.Stat(f.path)
	if err != nil {
		return nil, fmt.Errorf("--from %s: %w", f.path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("--from %s: not a regular file", f.path)
	}
	f.poll(context.Background())
	return f, nil
}

func (f *fileSource) name() string { return f.path }

func (f *fileSource) poll(context.Context) {
	fi, err := os.Stat(f.path)
	if err != nil {
		f.reject(fileStamp{}, fmt.Sprintf("cannot read %s: %v", f.path, errors.Unwrap(err)))
		return
	}
	st := stampOf(fi)
	f.mu.Lock()
	same := st == f.last
	f.mu.Unlock()
	if same {
		return
	}
	ps, why := readList(f.path)
	if fi2, err := os.Stat(f.path); err != nil || stampOf(fi2) != st {
		return // changed while read: read it again at the next poll
	}
	if why != "" {
		f.reject(st, why)
		return
	}
	added, removed := f.s.publish(ps, nil)
	f.mu.Lock()
	f.last, f.lastOK, f.why = st, true, ""
	f.mu.Unlock()
	f.s.log.Info("upstreams loaded", "from", f.path, "upstreams", len(ps), "added", added, "removed", removed)
}

// reject records that the file at st is not used, logging why once per change.
func (f *fileSource) reject(st fileStamp, why string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if st == f.last && why == f.why {
		return
	}
	f.last, f.why = st, why
	kept := len(f.s.set.Load().list)
	f.s.log.Warn("proxy list not taken; keeping the last good set", "from", f.path, "reason", why, "upstreams", kept)
}

// readList reads and checks a list; why says what is wrong with it ("" when it can be used).
func readList(path string) ([]proxy.Proxy, string) {
	ps, bad, err := proxy.ReadFile(path, proxy.Auto)
	switch {
	case err != nil:
		return nil, secret.Redact(err.Error())
	case len(bad) > 0:
		var b strings.Builder
		fmt.Fprintf(&b, "%d bad lines", len(bad))
		for i, e := range bad[:min(3, len(bad))] {
			if i == 0 {
				b.WriteString(": ")
			} else {
				b.WriteString("; ")
			}
			b.WriteString(secret.Redact(e.Error()))
		}
		return nil, b.String()
	case len(ps) == 0:
		return nil, "no proxy in it (empty)"
	}
	for _, p := range ps {
		if p.Scheme == proxy.Unknown {
			return nil, fmt.Sprintf("%s has no scheme: write it as http://, https://, socks4://, socks4a:// or socks5://", p.Addr())
		}
	}
	return ps, ""
}

func (f *fileSource) empty() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.why != "" {
		return "the list " + f.path + " gave no usable set yet: " + f.why
	}
	return "the list " + f.path + " holds no proxy"
}

func (f *fileSource) report(*upstream, string) {}

func (f *fileSource) close() {}
