package lab

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// serveHostile serves one hostile kind. Each loop ends when the client goes away or the
// server stops, so none outlives a scraper that gave up.
func (s *Sources) serveHostile(w http.ResponseWriter, r *http.Request, kind string) {
	line := []byte("127.0.0.3:8080\n")
	switch kind {
	case HostileHuge:
		const size = 1 << 30
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", strconv.Itoa(size))
		s.repeat(w, r, bytes.Repeat(line, 4096), size)
	case HostileEndless:
		w.Header().Set("Content-Type", "text/plain")
		s.repeat(w, r, bytes.Repeat(line, 4096), -1)
	case HostileSlowDrip:
		s.drip(w, r, line)
	case HostileBinary:
		w.Header().Set("Content-Type", "application/octet-stream")
		b := make([]byte, 64<<10)
		rng := rand.New(rand.NewPCG(7, 7))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		_, _ = w.Write(b)
	case HostileMalformedJSON:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"data":{"proxies":[{"ip":"127.0.0.3","port":8080},{"ip":"127.0.0.4","port":`))
	case HostileRedirectLoop:
		http.Redirect(w, r, "/hostile/"+HostileRedirectLoop+"-2", http.StatusFound)
	case HostileRedirectLoop + "-2":
		http.Redirect(w, r, "/hostile/"+HostileRedirectLoop, http.StatusFound)
	case HostileWrongType:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("<!DOCTYPE html><html><body><h1>Rate limited</h1><p>127.0.0.3:8080</p></body></html>\n"))
	case HostileGzipBomb:
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Encoding", "gzip")
		_, _ = w.Write(s.gzipBomb())
	case HostileStatus500:
		http.Error(w, "internal error", http.StatusInternalServerError)
	default:
		http.NotFound(w, r)
	}
}

// drip writes one byte of line every 200 ms until the client or the server goes away.
func (s *Sources) drip(w http.ResponseWriter, r *http.Request, line []byte) {
	w.Header().Set("Content-Type", "text/plain")
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for i := 0; ; i++ {
		if _, err := w.Write(line[i%len(line) : i%len(line)+1]); err != nil {
			return
		}
		w.(http.Flusher).Flush()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		case <-s.quit:
			return
		}
	}
}

// gzipBomb is about 64 KiB of gzip that inflates to 64 MiB of newlines, made once: one gzip
// member of 1 MiB of newlines, repeated (a gzip stream may hold several members, and readers
// inflate them one after the other).
func (s *Sources) gzipBomb() []byte {
	s.bombOnce.Do(func() {
		var m bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&m, gzip.BestCompression)
		_, _ = zw.Write(bytes.Repeat([]byte("\n"), 1<<20))
		_ = zw.Close()
		s.bomb = bytes.Repeat(m.Bytes(), 64)
	})
	return s.bomb
}

// repeat writes chunk again and again, up to size bytes (forever if size < 0).
func (s *Sources) repeat(w http.ResponseWriter, r *http.Request, chunk []byte, size int) {
	for sent := 0; size < 0 || sent < size; sent += len(chunk) {
		if size >= 0 && size-sent < len(chunk) {
			chunk = chunk[:size-sent]
		}
		if _, err := w.Write(chunk); err != nil {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-s.quit:
			return
		default:
		}
	}
}

// writeFiles writes sources.txt, sources.toml and hostile.toml, each atomically.
func (s *Sources) writeFiles(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("source files: %w", err)
	}
	var txt, toml, hostile strings.Builder
	toml.WriteString("# The lab's proxy list sources, as a proxyline scrape configuration.\n")
	for _, in := range s.infos {
		txt.WriteString(in.URL + "\n")
		format := in.Format
		if format == SourceGarbage {
			format = "text"
		}
		fmt.Fprintf(&toml, "\n[[source]]\nname = %q\nurl = %q\nformat = %q\n", in.Name, in.URL, format)
		if in.JSONPath != "" {
			fmt.Fprintf(&toml, "json_path = %q\n", in.JSONPath)
		}
	}
	hostile.WriteString("# The lab's hostile sources: each must end with a clear per-source error.\n")
	for _, k := range HostileKinds() {
		fmt.Fprintf(&hostile, "\n[[source]]\nname = %q\nurl = %q\n", "hostile-"+k, s.HostileURL(k))
	}
	for name, content := range map[string]string{"sources.txt": txt.String(), "sources.toml": toml.String(), "hostile.toml": hostile.String()} {
		if err := writeAtomic(filepath.Join(dir, name), []byte(content)); err != nil {
			return err
		}
	}
	return nil
}

// writeAtomic writes a file through a temporary file renamed into place.
func writeAtomic(path string, b []byte) error {
	return writeFileWith(path, func(w *bufio.Writer) error {
		_, err := w.Write(b)
		return err
	})
}
