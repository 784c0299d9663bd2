package rotate

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/metrics"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/testkit"
)

// BenchmarkForward measures the plain HTTP forward path, what scripts/bench-rotate.sh loads with
// wrk: keep-alive clients send absolute-URI GETs of 100 bytes through the rotator over 50 lab
// HTTP upstreams. The lab runs as a separate process (`proxyline lab`) and the clients are raw
// sockets that allocate nothing per request, so allocs/op and B/op are the rotator's own, and
// cpu-us/op (this process's user+system time per request, from getrusage) is the rotator's plus
// the clients' few syscalls: numbers the machine's load moves much less than ns/op. gc-cpu-us/op
// and gcs/1000op are the collector's share (runtime/metrics), for GOGC comparisons.
func BenchmarkForward(b *testing.B) {
	backend, list := startLabProcess(b, 50)
	// No log handler: the default discards, as serve's warn level does for a forwarded request.
	s := runServer(b, Config{Listen: serveOptions("127.0.0.1:0"), From: list})
	u, err := url.Parse(backend)
	if err != nil {
		b.Fatal(err)
	}
	req := []byte(fmt.Sprintf("GET %sbytes/100 HTTP/1.1\r\nHost: %s\r\nUser-Agent: bench\r\n\r\n", backend, u.Host))
	const clients = 16
	conns := make([]*rawClient, clients)
	for i := range conns {
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = c.Close() })
		conns[i] = &rawClient{c: c, br: bufio.NewReaderSize(c, 4096), req: req}
	}
	// Warm up: every upstream gets its tunnels to the backend, as in the script's steady state.
	if err := runClients(conns, 50*clients); err != nil {
		b.Fatal(err)
	}
	var ru0, ru1 syscall.Rusage
	gc := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}, {Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(gc)
	gc0, cycles0 := gc[0].Value.Float64(), gc[1].Value.Uint64()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	b.ReportAllocs()
	b.ResetTimer()
	if err := runClients(conns, b.N); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	metrics.Read(gc)
	cpu := time.Duration(ru1.Utime.Nano() - ru0.Utime.Nano() + ru1.Stime.Nano() - ru0.Stime.Nano())
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/op")
	// The runtime's estimate of the CPU its collector used (background workers, assists, pauses).
	b.ReportMetric((gc[0].Value.Float64()-gc0)*1e6/float64(b.N), "gc-cpu-us/op")
	b.ReportMetric(float64(gc[1].Value.Uint64()-cycles0)*1000/float64(b.N), "gcs/1000op")
}

// runClients sends n requests in all, spread over the clients running at once.
func runClients(conns []*rawClient, n int) error {
	errs := make(chan error, len(conns))
	for i, c := range conns {
		share := n / len(conns)
		if i < n%len(conns) {
			share++
		}
		go func() { errs <- c.run(share) }()
	}
	var first error
	for range conns {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// rawClient is a keep-alive HTTP/1.1 client on one connection that allocates nothing per request:
// it writes a fixed request and reads the response head line by line and a Content-Length body.
type rawClient struct {
	c   net.Conn
	br  *bufio.Reader
	req []byte
}

var contentLength = []byte("content-length:")

func (r *rawClient) run(n int) error {
	for range n {
		if _, err := r.c.Write(r.req); err != nil {
			return err
		}
		status, err := r.br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if !bytes.HasPrefix(status, []byte("HTTP/1.1 200 ")) {
			return fmt.Errorf("response %q", status)
		}
		length := -1
		for {
			line, err := r.br.ReadSlice('\n')
			if err != nil {
				return err
			}
			if len(line) <= 2 {
				break
			}
			if len(line) > len(contentLength) && bytes.EqualFold(line[:len(contentLength)], contentLength) {
				length = atoiTrim(line[len(contentLength):])
			}
		}
		if length < 0 {
			return errors.New("response without Content-Length")
		}
		if _, err := r.br.Discard(length); err != nil {
			return err
		}
	}
	return nil
}

// atoiTrim parses a header value's decimal digits; -1 when there are none.
func atoiTrim(v []byte) int {
	n, seen := 0, false
	for _, c := range v {
		if c >= '0' && c <= '9' {
			n, seen = n*10+int(c-'0'), true
		}
	}
	if !seen {
		return -1
	}
	return n
}

// startLabProcess runs `proxyline lab` with n HTTP upstreams and a backend as a child process
// (its work does not count in this process's allocations or CPU); it stops with the benchmark.
// It returns the backend's URL and the candidates' list file.
func startLabProcess(b *testing.B, n int) (backend, list string) {
	b.Helper()
	bin := testkit.BuildBinary(b, "./cmd/proxyline", testkit.NoRace())
	dir := b.TempDir()
	cmd := exec.Command(bin, "lab", "--dir", dir, "--http", strconv.Itoa(n), "--backend")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, nil, nil
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		_ = cmd.Wait()
	})
	testkit.WaitForErr(b, 60*time.Second, "the lab's backend.txt", func() error {
		data, err := os.ReadFile(filepath.Join(dir, "backend.txt"))
		if err != nil || len(data) == 0 {
			return fmt.Errorf("backend.txt: %v (%d bytes)", err, len(data))
		}
		backend = strings.TrimSpace(strings.SplitN(string(data), "\n", 2)[0])
		return nil
	})
	return backend, filepath.Join(dir, "candidates.txt")
}
