// Command bench measures `proxyline check` against a loopback lab: by default 20,000 candidates
// (5,000 live HTTP, 5,000 live SOCKS5, 5,000 refused, 5,000 blackholes) checked with -c 1000
// -t 2s. The lab runs in its own process (this program re-executed as "serve-lab", stopped by
// PID), so the checker's CPU time and peak RSS, taken from its rusage, are its own. It prints
// wall time, CPU time, peak RSS, false positives and false negatives versus the lab's truth, and
// exits 1 when a target is missed.
//
//	go build -o /tmp/proxyline ./cmd/proxyline
//	go run ./internal/check/bench -proxyline /tmp/proxyline
//
// scripts/bench-check.sh does both.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/proxyline/proxyline/internal/lab"
	"github.com/proxyline/proxyline/proxy"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// counts is the lab mix, shared by the benchmark and the serve-lab child.
type counts struct{ http, socks5, refused, blackhole int }

func (c *counts) flags(fs *flag.FlagSet) {
	fs.IntVar(&c.http, "http", 5000, "live HTTP proxies")
	fs.IntVar(&c.socks5, "socks5", 5000, "live SOCKS5 proxies")
	fs.IntVar(&c.refused, "refused", 5000, "refused addresses")
	fs.IntVar(&c.blackhole, "blackhole", 5000, "blackholes (accept, never answer)")
}

func (c counts) args() []string {
	return []string{"-http", strconv.Itoa(c.http), "-socks5", strconv.Itoa(c.socks5),
		"-refused", strconv.Itoa(c.refused), "-blackhole", strconv.Itoa(c.blackhole)}
}

func (c counts) total() int { return c.http + c.socks5 + c.refused + c.blackhole }

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "serve-lab" {
		if err := serveLab(args[1:], stdout); err != nil {
			fmt.Fprintf(stderr, "bench serve-lab: %v\n", err)
			return 3
		}
		return 0
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	bin := fs.String("proxyline", "", "the proxyline binary to measure (required)")
	conc := fs.Int("c", 1000, "checker concurrency (-c)")
	timeout := fs.Duration("t", 2*time.Second, "checker timeout (-t)")
	tlsJudge := fs.Bool("tls", false, "use the lab's https judge")
	keep := fs.Bool("keep", false, "keep the working directory (candidates, truth, results)")
	var mix counts
	mix.flags(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *bin == "" {
		fmt.Fprintln(stderr, "bench: -proxyline PATH is required")
		return 2
	}
	machine := machineState()
	rep, err := bench(*bin, mix, *conc, *timeout, *tlsJudge, *keep, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 3
	}
	fmt.Fprint(stdout, rep.table(mix, *conc, *timeout))
	fmt.Fprintf(stdout, "  machine before the run: %s\n", machine)
	if !rep.ok() {
		return 1
	}
	return 0
}

// report is what one run measured.
type report struct {
	wall, user, sys             time.Duration
	maxRSSKiB                   int64
	checked, alive              int
	falsePos, falseNeg, missing int
	exitCode                    int
}

// Targets of the checker benchmark.
const (
	targetWall = 11 * time.Second
	targetCPU  = 3500 * time.Millisecond
	targetRSS  = 60 << 10 // KiB
)

func (r report) ok() bool {
	return r.wall <= targetWall && r.user+r.sys <= targetCPU && r.maxRSSKiB <= targetRSS &&
		r.falsePos == 0 && r.falseNeg == 0 && r.missing == 0
}

func (r report) table(mix counts, conc int, timeout time.Duration) string {
	mark := func(ok bool) string {
		if ok {
			return "ok"
		}
		return "MISSED"
	}
	cpu := r.user + r.sys
	var b strings.Builder
	fmt.Fprintf(&b, "proxyline check benchmark: %d candidates (%d http, %d socks5, %d refused, %d blackhole), -c %d -t %s\n",
		mix.total(), mix.http, mix.socks5, mix.refused, mix.blackhole, conc, timeout)
	fmt.Fprintf(&b, "  %-15s %10s  %-22s %s\n", "measure", "value", "target", "")
	fmt.Fprintf(&b, "  %-15s %9.2fs  %-22s %s\n", "wall time", r.wall.Seconds(), "<= 11 s", mark(r.wall <= targetWall))
	fmt.Fprintf(&b, "  %-15s %9.2fs  %-22s %s\n", "cpu (user+sys)", cpu.Seconds(), "<= 3.5 s", mark(cpu <= targetCPU))
	fmt.Fprintf(&b, "  %-15s %9.2fs  %-22s\n", "  user", r.user.Seconds(), "")
	fmt.Fprintf(&b, "  %-15s %9.2fs  %-22s\n", "  sys", r.sys.Seconds(), "")
	fmt.Fprintf(&b, "  %-15s %8.1fMB  %-22s %s\n", "peak rss", float64(r.maxRSSKiB)/1024, "<= 60 MB", mark(r.maxRSSKiB <= targetRSS))
	fmt.Fprintf(&b, "  %-15s %10d  %-22s %s\n", "false positives", r.falsePos, "0", mark(r.falsePos == 0))
	fmt.Fprintf(&b, "  %-15s %10d  %-22s %s\n", "false negatives", r.falseNeg, "0", mark(r.falseNeg == 0))
	fmt.Fprintf(&b, "  %-15s %10d  %-22s %s\n", "not checked", r.missing, "0", mark(r.missing == 0))
	fmt.Fprintf(&b, "  %-15s %10d  (exit status %d)\n", "alive", r.alive, r.exitCode)
	fmt.Fprintf(&b, "  cpu per check: %.0f µs\n", float64(cpu.Microseconds())/float64(max(r.checked, 1)))
	return b.String()
}

// bench starts the lab process, runs the checker process, stops the lab and compares.
func bench(bin string, mix counts, conc int, timeout time.Duration, tlsJudge, keep bool, stderr io.Writer) (report, error) {
	var rep report
	dir, err := os.MkdirTemp("", "proxyline-bench-")
	if err != nil {
		return rep, fmt.Errorf("work dir: %w", err)
	}
	if keep {
		fmt.Fprintf(stderr, "bench: working directory %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	self, err := os.Executable()
	if err != nil {
		return rep, fmt.Errorf("find own executable: %w", err)
	}
	labCmd := exec.Command(self, append([]string{"serve-lab", "-dir", dir}, mix.args()...)...)
	labCmd.Stderr = stderr
	// Pdeathsig: the lab dies with us even if we are killed; it is stopped by its PID below.
	labCmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	ready, err := labCmd.StdoutPipe()
	if err != nil {
		return rep, fmt.Errorf("lab stdout: %w", err)
	}
	if err := labCmd.Start(); err != nil {
		return rep, fmt.Errorf("start lab: %w", err)
	}
	defer stopByPID(labCmd, stderr)
	if err := waitReady(ready, 60*time.Second); err != nil {
		return rep, fmt.Errorf("lab: %w", err)
	}
	judges, err := os.ReadFile(filepath.Join(dir, "judge.txt"))
	if err != nil {
		return rep, fmt.Errorf("lab judge: %w", err)
	}
	lines := strings.Fields(string(judges))
	if len(lines) < 2 {
		return rep, fmt.Errorf("lab judge.txt: want two URLs, got %q", judges)
	}
	judgeURL := lines[0]
	if tlsJudge {
		judgeURL = lines[1]
	}

	results := filepath.Join(dir, "results.jsonl")
	check := exec.Command(bin, "check", "-f", filepath.Join(dir, "candidates.txt"), "--judge", judgeURL,
		"--judge-ca", filepath.Join(dir, "ca.pem"), "-c", strconv.Itoa(conc), "-t", timeout.String(),
		"--format", "jsonl", "--all", "-o", results)
	check.Stderr = stderr
	check.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	err = check.Run()
	rep.wall = time.Since(start)
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return rep, fmt.Errorf("run checker: %w", err)
	}
	rep.exitCode = check.ProcessState.ExitCode()
	if rep.exitCode > 1 {
		return rep, fmt.Errorf("checker exited with status %d", rep.exitCode)
	}
	ru, ok := check.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return rep, errors.New("no rusage for the checker")
	}
	rep.user = time.Duration(ru.Utime.Nano())
	rep.sys = time.Duration(ru.Stime.Nano())
	rep.maxRSSKiB = ru.Maxrss // KiB on Linux
	return rep, compare(&rep, filepath.Join(dir, "truth.jsonl"), results)
}

// machineState describes what else loads the machine: the load average and the number of
// TIME_WAIT sockets (each lab run leaves thousands; the kernel's connect() slows as they pile up).
// The numbers are noisy on a shared machine; this says how noisy.
func machineState() string {
	load := "?"
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			load = strings.Join(f[:3], " ")
		}
	}
	tw := 0
	for _, path := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(path)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) > 3 && f[3] == "06" { // TCP_TIME_WAIT
				tw++
			}
		}
		f.Close()
	}
	return fmt.Sprintf("load average %s, %d TIME_WAIT sockets", load, tw)
}

// waitReady waits for the lab child's "ready" line.
func waitReady(r io.Reader, d time.Duration) error {
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(r).ReadString('\n')
		line <- s
		io.Copy(io.Discard, r) // keep draining so the child never blocks on a full pipe
	}()
	select {
	case s := <-line:
		if strings.TrimSpace(s) != "ready" {
			return fmt.Errorf("did not start (said %q)", s)
		}
		return nil
	case <-time.After(d):
		return fmt.Errorf("not ready after %v", d)
	}
}

// stopByPID sends SIGTERM to the lab process, waits up to 10 s, then kills it.
func stopByPID(cmd *exec.Cmd, stderr io.Writer) {
	_ = cmd.Process.Signal(syscall.SIGTERM) // already gone: Wait reports it
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		fmt.Fprintf(stderr, "bench: lab pid %d ignored SIGTERM, killing it\n", cmd.Process.Pid)
		_ = cmd.Process.Kill()
		<-done
	}
}

// compare counts false positives and negatives of results against truth, by proxy address.
func compare(rep *report, truthPath, resultsPath string) error {
	want := map[string]lab.TruthRecord{}
	if err := readJSONL(truthPath, func(b []byte) error {
		var t lab.TruthRecord
		if err := json.Unmarshal(b, &t); err != nil {
			return err
		}
		p, err := proxy.Parse(t.Proxy)
		if err != nil {
			return err
		}
		want[p.Addr()] = t
		return nil
	}); err != nil {
		return err
	}
	seen := map[string]bool{}
	if err := readJSONL(resultsPath, func(b []byte) error {
		var r struct {
			Proxy string `json:"proxy"`
			Class string `json:"class"`
		}
		if err := json.Unmarshal(b, &r); err != nil {
			return err
		}
		p, err := proxy.Parse(r.Proxy)
		if err != nil {
			return err
		}
		t, ok := want[p.Addr()]
		if !ok {
			return fmt.Errorf("result for %s, not a candidate", r.Proxy)
		}
		seen[p.Addr()] = true
		rep.checked++
		alive := r.Class == "alive"
		if alive {
			rep.alive++
		}
		switch {
		case alive && !t.Alive:
			rep.falsePos++
		case !alive && t.Alive:
			rep.falseNeg++
		}
		return nil
	}); err != nil {
		return err
	}
	rep.missing = len(want) - len(seen)
	return nil
}

func readJSONL(path string, each func([]byte) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		if err := each(sc.Bytes()); err != nil {
			return fmt.Errorf("%s:%d: %w", path, n, err)
		}
	}
	return sc.Err()
}

// serveLab is the lab child: it starts the lab with files in -dir, says "ready", and serves
// until SIGTERM or SIGINT.
func serveLab(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("serve-lab", flag.ContinueOnError)
	dir := fs.String("dir", "", "directory for the lab files")
	var mix counts
	mix.flags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	l, err := lab.Start(ctx, lab.Config{HTTP: mix.http, SOCKS5: mix.socks5, Refused: mix.refused, Blackhole: mix.blackhole, Dir: *dir})
	if err != nil {
		return err
	}
	defer l.Stop()
	fmt.Fprintln(stdout, "ready")
	<-ctx.Done()
	return nil
}
