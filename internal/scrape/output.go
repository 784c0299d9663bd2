package scrape

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/internal/scrape/geo"
	"github.com/proxyline/proxyline/proxy"
)

// extraKeys are the fields added to jsonl and csv output, after the standard ones: the sources
// that named the proxy, and with a geo database its country, city and autonomous system.
func extraKeys(withGeo bool) []string {
	if !withGeo {
		return []string{"sources"}
	}
	return []string{"sources", "country", "city", "asn", "as_org"}
}

// extraValues are their values for one proxy.
func extraValues(withGeo bool, sources []string, g geo.Info) []any {
	if !withGeo {
		return []any{sources}
	}
	var asn any
	if g.ASN != 0 {
		asn = g.ASN
	}
	return []any{sources, g.Country, g.City, asn, g.ASOrg}
}

// sink is where the run's output goes: a stream (stdout) or an atomicFile.
type sink struct {
	w    io.Writer
	file *atomicFile // nil for stdout
}

// openSink opens -o (atomically) or takes stdout.
func openSink(path string, stdout io.Writer, unsafe bool) (*sink, error) {
	if path == "" {
		return &sink{w: stdout}, nil
	}
	f, err := createAtomic(path, unsafe)
	if err != nil {
		return nil, fmt.Errorf("create output: %w", err)
	}
	return &sink{w: f, file: f}, nil
}

func (s *sink) commit() error {
	if s.file == nil {
		return nil
	}
	return s.file.Commit()
}

func (s *sink) abort() {
	if s.file != nil {
		s.file.Abort()
	}
}

// candidateWriter writes candidates (no check) in one of check's output formats: text is
// one proxy per line (what check -f reads); jsonl and csv add the sources and geo fields.
type candidateWriter struct {
	format  string
	withGeo bool
	w       *proxy.Writer
}

func newCandidateWriter(w io.Writer, format string, withGeo bool) *candidateWriter {
	f := proxy.Text
	switch format {
	case check.FormatJSONL:
		f = proxy.JSONL
	case check.FormatCSV:
		f = proxy.CSV
	}
	return &candidateWriter{format: format, withGeo: withGeo, w: proxy.NewWriter(w, f)}
}

func (c *candidateWriter) write(p proxy.Proxy, sources []string, g geo.Info) error {
	if c.format == check.FormatText {
		return c.w.Write(p)
	}
	keys, vals := extraKeys(c.withGeo), extraValues(c.withGeo, sources, g)
	fields := make([]proxy.Field, len(keys))
	for i, k := range keys {
		v := vals[i]
		if k == "sources" && c.format == check.FormatCSV {
			v = joinSemi(sources)
		}
		fields[i] = proxy.Field{Key: k, Value: v}
	}
	return c.w.Write(p, fields...)
}

func (c *candidateWriter) flush() error { return c.w.Flush() }

func joinSemi(ss []string) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += ";"
		}
		out += s
	}
	return out
}

// dirEntry is one proxy of the output directory.
type dirEntry struct {
	Proxy     string    `json:"proxy"`
	Protocol  string    `json:"protocol,omitempty"`
	Host      string    `json:"host"`
	Port      uint16    `json:"port"`
	Username  string    `json:"username,omitempty"`
	Password  string    `json:"password,omitempty"`
	Sources   []string  `json:"sources"`
	ExitIP    string    `json:"exit_ip,omitempty"`
	Anonymity string    `json:"anonymity,omitempty"`
	LatencyMS float64   `json:"latency_ms,omitempty"`
	Geo       *geo.Info `json:"geolocation,omitempty"`
}

// outDir is the PSC-style output directory: proxies.json (a JSON array of every proxy with its
// details) and one text file per protocol, all.txt, http.txt (http and https proxies),
// socks4.txt (socks4 and socks4a), socks5.txt. Each file appears complete or not at all.
type outDir struct {
	files []*atomicFile
	json  *bufio.Writer
	txt   map[string]*bufio.Writer
	n     int
}

// outDirFiles are the files of the output directory, proxies.json first.
var outDirFiles = []string{"proxies.json", "all.txt", "http.txt", "socks4.txt", "socks5.txt"}

func openOutDir(dir string, unsafe bool) (*outDir, []string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("--out-dir: %w", err)
	}
	swept := sweepTemps(dir)
	d := &outDir{txt: map[string]*bufio.Writer{}}
	for _, name := range outDirFiles {
		f, err := createAtomic(filepath.Join(dir, name), unsafe)
		if err != nil {
			d.abort()
			return nil, nil, fmt.Errorf("--out-dir: %w", err)
		}
		d.files = append(d.files, f)
		w := bufio.NewWriterSize(f, 32<<10)
		if name == "proxies.json" {
			d.json = w
			_, _ = w.WriteString("[")
		} else {
			d.txt[name] = w
		}
	}
	return d, swept, nil
}

// add writes one proxy to proxies.json, all.txt and its protocol's file.
func (d *outDir) add(p proxy.Proxy, sources []string, g geo.Info, r *check.Result) error {
	e := dirEntry{Proxy: p.String(), Protocol: string(p.Scheme), Host: p.Host, Port: p.Port, Username: p.User,
		Password: p.Password, Sources: sources}
	if !g.IsZero() {
		e.Geo = &g
	}
	if r != nil {
		e.ExitIP, e.Anonymity = r.ExitIP, string(r.Anonymity)
		e.LatencyMS = float64(r.Total.Microseconds()) / 1000
	}
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if d.n > 0 {
		_, _ = d.json.WriteString(",")
	}
	d.n++
	_, _ = d.json.WriteString("\n  ")
	_, _ = d.json.Write(b)
	line := p.String() + "\n"
	_, _ = d.txt["all.txt"].WriteString(line)
	if name := protocolFile(p.Scheme); name != "" {
		_, _ = d.txt[name].WriteString(line)
	}
	return nil
}

func protocolFile(s proxy.Scheme) string {
	switch s {
	case proxy.HTTP, proxy.HTTPS:
		return "http.txt"
	case proxy.SOCKS4, proxy.SOCKS4A:
		return "socks4.txt"
	case proxy.SOCKS5:
		return "socks5.txt"
	}
	return ""
}

// commit finishes every file and makes them appear.
func (d *outDir) commit() error {
	_, _ = d.json.WriteString("\n]\n")
	for i, name := range outDirFiles {
		w := d.json
		if i > 0 {
			w = d.txt[name]
		}
		if err := w.Flush(); err != nil {
			d.abort()
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	for i, f := range d.files {
		if err := f.Commit(); err != nil {
			for _, g := range d.files[i+1:] {
				g.Abort()
			}
			return err
		}
	}
	return nil
}

func (d *outDir) abort() {
	for _, f := range d.files {
		f.Abort()
	}
}
