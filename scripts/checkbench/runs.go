package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/proxyline/proxyline/internal/lab"
	"github.com/proxyline/proxyline/proxy"
)

// report is what one run measured.
type report struct {
	name                        string // runHTTP, runHTTPS or runMubeng
	wall, user, sys             time.Duration
	maxRSSKiB                   int64
	checked, alive              int
	falsePos, falseNeg, missing int
	exitCode                    int
	tls                         *handshakeStats // at the https judge during the run; nil for the http judge
}

func (r report) cpu() time.Duration { return r.user + r.sys }

// labProcess is the serve-lab child.
type labProcess struct {
	cmd   *exec.Cmd
	lines chan string // its stdout, line by line
}

// startLab starts the serve-lab child with its files in dir and waits until it is ready.
func startLab(o options, dir string, stderr io.Writer) (*labProcess, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own executable: %w", err)
	}
	args := append([]string{"serve-lab", "-dir", dir, "-judge-name", o.judgeName}, o.mix.args()...)
	cmd := exec.Command(self, args...)
	cmd.Stderr = stderr
	// Pdeathsig: the lab dies with us even if we are killed; it is stopped by its PID below.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("lab stdout: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start lab: %w", err)
	}
	p := &labProcess{cmd: cmd, lines: make(chan string, 16)}
	go func() {
		defer close(p.lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		io.Copy(io.Discard, out) // keep draining so the child never blocks on a full pipe
	}()
	if s, err := p.line(60 * time.Second); err != nil || s != "ready" {
		p.stop(stderr)
		return nil, fmt.Errorf("lab did not start (said %q): %v", s, err)
	}
	return p, nil
}

// line returns the child's next line of output.
func (p *labProcess) line(d time.Duration) (string, error) {
	select {
	case s, ok := <-p.lines:
		if !ok {
			return "", errors.New("lab exited")
		}
		return s, nil
	case <-time.After(d):
		return "", fmt.Errorf("no answer from the lab after %v", d)
	}
}

// judgeStats returns the https judge's handshakes since the last call.
func (p *labProcess) judgeStats() (handshakeStats, error) {
	if err := p.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		return handshakeStats{}, fmt.Errorf("ask the lab for judge stats: %w", err)
	}
	s, err := p.line(10 * time.Second)
	if err != nil {
		return handshakeStats{}, err
	}
	rest, ok := strings.CutPrefix(s, "stats ")
	if !ok {
		return handshakeStats{}, fmt.Errorf("lab said %q, want stats", s)
	}
	return parseStats(rest)
}

// stop sends SIGTERM to the lab process, waits up to 10 s, then kills it.
func (p *labProcess) stop(stderr io.Writer) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM) // already gone: Wait reports it
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		fmt.Fprintf(stderr, "bench: lab pid %d ignored SIGTERM, killing it\n", p.cmd.Process.Pid)
		_ = p.cmd.Process.Kill()
		<-done
	}
}

// bench starts the lab process, makes each run in turn (never two at once: each has the
// machine's share to itself), stops the lab and compares every run's output with the truth.
func bench(o options, runs []string, stderr io.Writer) ([]report, error) {
	dir, err := os.MkdirTemp("", "proxyline-bench-")
	if err != nil {
		return nil, fmt.Errorf("work dir: %w", err)
	}
	if o.keep {
		fmt.Fprintf(stderr, "bench: working directory %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	l, err := startLab(o, dir, stderr)
	if err != nil {
		return nil, err
	}
	defer l.stop(stderr)
	truth, err := readTruth(filepath.Join(dir, "truth.jsonl"))
	if err != nil {
		return nil, err
	}
	var reps []report
	for _, name := range runs {
		if _, err := l.judgeStats(); err != nil { // reset: count only this run's handshakes
			return nil, err
		}
		rep, err := runOne(o, name, dir, truth, stderr)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if name != runHTTP {
			st, err := l.judgeStats()
			if err != nil {
				return nil, err
			}
			rep.tls = &st
		}
		reps = append(reps, rep)
	}
	return reps, nil
}

// runOne runs one checker over the candidates and compares what it found with the truth.
func runOne(o options, name, dir string, truth map[string]lab.TruthRecord, stderr io.Writer) (report, error) {
	rep := report{name: name}
	judges, err := os.ReadFile(filepath.Join(dir, "judge.txt"))
	if err != nil {
		return rep, fmt.Errorf("lab judge: %w", err)
	}
	https, err := os.ReadFile(filepath.Join(dir, "judge-https.txt"))
	if err != nil {
		return rep, fmt.Errorf("https judge: %w", err)
	}
	candidates := filepath.Join(dir, "candidates.txt")
	out := filepath.Join(dir, name+".out")
	var cmd *exec.Cmd
	switch name {
	case runHTTP, runHTTPS:
		judgeURL, ca := strings.Fields(string(judges))[0], filepath.Join(dir, "ca.pem")
		if name == runHTTPS {
			judgeURL, ca = strings.TrimSpace(string(https)), filepath.Join(dir, "judge-ca.pem")
		}
		cmd = exec.Command(o.proxyline, "check", "-f", candidates, "--judge", judgeURL, "--judge-ca", ca,
			"-c", strconv.Itoa(o.conc), "-t", o.timeout.String(), "--format", "jsonl", "--all", "-o", out)
	case runMubeng:
		// Check mode asks https://ipinfo.io/json through each proxy, without verifying TLS, and
		// appends each live proxy's line to -o.
		cmd = exec.Command(o.mubeng, "-f", candidates, "-c", "-g", strconv.Itoa(o.conc), "-t", o.timeout.String(), "-o", out)
	}
	// stdin is /dev/null (mubeng reads stdin when it is not a terminal). proxyline's stderr is its
	// summary line; mubeng's output (a banner and a line per live proxy) goes to a file.
	cmd.Stderr = stderr
	if name == runMubeng {
		logf, err := os.Create(filepath.Join(dir, "mubeng.log"))
		if err != nil {
			return rep, err
		}
		defer logf.Close()
		cmd.Stdout, cmd.Stderr = logf, logf
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	err = cmd.Run()
	rep.wall = time.Since(start)
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return rep, fmt.Errorf("run %s: %w", cmd.Path, err)
	}
	rep.exitCode = cmd.ProcessState.ExitCode()
	if rep.exitCode > 1 && name != runMubeng {
		return rep, fmt.Errorf("checker exited with status %d", rep.exitCode)
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return rep, errors.New("no rusage for the checker")
	}
	rep.user = time.Duration(ru.Utime.Nano())
	rep.sys = time.Duration(ru.Stime.Nano())
	rep.maxRSSKiB = ru.Maxrss // KiB on Linux
	if name == runMubeng {
		return rep, compareLive(&rep, truth, out)
	}
	return rep, compareResults(&rep, truth, out)
}

// readTruth reads truth.jsonl, keyed by proxy address.
func readTruth(path string) (map[string]lab.TruthRecord, error) {
	want := map[string]lab.TruthRecord{}
	err := readLines(path, func(b []byte) error {
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
	})
	return want, err
}

// compareResults counts false positives and negatives of proxyline's JSON lines (every proxy,
// with --all) against the truth, by proxy address.
func compareResults(rep *report, truth map[string]lab.TruthRecord, path string) error {
	seen := map[string]bool{}
	if err := readLines(path, func(b []byte) error {
		var r struct {
			Proxy string `json:"proxy"`
			Class string `json:"class"`
		}
		if err := json.Unmarshal(b, &r); err != nil {
			return err
		}
		return rep.count(truth, seen, r.Proxy, r.Class == "alive")
	}); err != nil {
		return err
	}
	rep.missing = len(truth) - len(seen)
	return nil
}

// compareLive counts false positives and negatives of a list of live proxies (mubeng's -o):
// every listed proxy is alive, every other one is not. No file means no live proxy.
func compareLive(rep *report, truth map[string]lab.TruthRecord, path string) error {
	seen := map[string]bool{}
	err := readLines(path, func(b []byte) error {
		if len(strings.TrimSpace(string(b))) == 0 {
			return nil
		}
		return rep.count(truth, seen, string(b), true)
	})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for addr, t := range truth {
		if !seen[addr] {
			rep.checked++
			if t.Alive {
				rep.falseNeg++
			}
		}
	}
	return nil
}

// count adds one result for the proxy written as s.
func (rep *report) count(truth map[string]lab.TruthRecord, seen map[string]bool, s string, alive bool) error {
	p, err := proxy.Parse(s)
	if err != nil {
		return err
	}
	t, ok := truth[p.Addr()]
	if !ok {
		return fmt.Errorf("result for %s, not a candidate", s)
	}
	if seen[p.Addr()] {
		return fmt.Errorf("two results for %s", s)
	}
	seen[p.Addr()] = true
	rep.checked++
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
}

func readLines(path string, each func([]byte) error) error {
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
