// Command checkbench measures `proxyline check` against a loopback lab: by default 20,000 candidates
// (5,000 live HTTP, 5,000 live SOCKS5, 5,000 refused, 5,000 blackholes) checked with -c 1000
// -t 2s, once through the lab's plain http judge and once through an https judge, and, when
// given -mubeng, mubeng's check mode on the same farm and judge, side by side. The lab and the
// judges run in their own process (this program re-executed as "serve-lab", stopped by PID), so
// each checker's CPU time and peak RSS, taken from its rusage, are its own. It prints one table:
// wall time, CPU time, peak RSS, false positives and false negatives versus the lab's truth, TLS
// handshakes as the judge saw them (full or resumed, and the key exchange), and proxyline's CPU
// as a ratio of mubeng's. It exits 1 when a target is missed.
//
//	go build -o /tmp/proxyline ./cmd/proxyline
//	go run ./scripts/checkbench -proxyline /tmp/proxyline
//
// mubeng always asks https://ipinfo.io/json, so it runs only where that name is the judge's
// loopback address and nothing else is reachable: inside scripts/netns-ipinfo.sh (a private
// network namespace holding only lo, with ipinfo.io mapped to 127.0.0.2 in /etc/hosts), with
// -judge-name ipinfo.io. scripts/bench-check.sh does all of it.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/proxyline/proxyline/internal/lab"
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

// options are the benchmark's flags.
type options struct {
	proxyline, mubeng string
	judgeName         string
	only              string
	conc              int
	timeout           time.Duration
	keep              bool
	mix               counts
}

// The runs a benchmark can make, in the order they are made and shown.
const (
	runHTTP   = "http"   // proxyline through the lab's plain judge
	runHTTPS  = "https"  // proxyline through the https judge
	runMubeng = "mubeng" // mubeng's check mode through the https judge
)

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "serve-lab" {
		if err := serveLab(args[1:], stdout); err != nil {
			fmt.Fprintf(stderr, "bench serve-lab: %v\n", err)
			return 3
		}
		return 0
	}
	o, runs, err := parseFlags(args, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stderr, "bench: %v\n", err)
		}
		return 2
	}
	machine := machineState()
	reps, err := bench(o, runs, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 3
	}
	t := table{mix: o.mix, conc: o.conc, timeout: o.timeout, reps: reps}
	fmt.Fprint(stdout, t.String())
	fmt.Fprintf(stdout, "  machine before the run: %s\n", machine)
	if !t.ok() {
		return 1
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (options, []string, error) {
	var o options
	fs := flag.NewFlagSet("checkbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.proxyline, "proxyline", "", "the proxyline binary to measure (required)")
	fs.StringVar(&o.mubeng, "mubeng", "", "mubeng binary to measure beside it (needs -judge-name ipinfo.io, inside scripts/netns-ipinfo.sh)")
	fs.StringVar(&o.judgeName, "judge-name", "", "host name of the https judge, served on 127.0.0.2:443; /etc/hosts must map it to 127.0.0.2")
	fs.StringVar(&o.only, "only", "", "comma-separated runs to make: http, https, mubeng (default: all that apply)")
	fs.IntVar(&o.conc, "c", 1000, "checker concurrency (-c, mubeng's -g)")
	fs.DurationVar(&o.timeout, "t", 2*time.Second, "checker timeout (-t)")
	fs.BoolVar(&o.keep, "keep", false, "keep the working directory (candidates, truth, results)")
	tlsOnly := fs.Bool("tls", false, "the https judge only (the same as -only https)")
	o.mix.flags(fs)
	if err := fs.Parse(args); err != nil {
		return o, nil, err
	}
	if fs.NArg() > 0 {
		return o, nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.proxyline == "" {
		return o, nil, errors.New("-proxyline PATH is required")
	}
	if *tlsOnly {
		o.only = runHTTPS
	}
	runs := []string{runHTTP, runHTTPS}
	if o.mubeng != "" {
		runs = append(runs, runMubeng)
	}
	if o.only != "" {
		runs = strings.Split(o.only, ",")
	}
	for _, r := range runs {
		switch r {
		case runHTTP, runHTTPS:
		case runMubeng:
			if o.mubeng == "" {
				return o, nil, errors.New("-only mubeng needs -mubeng PATH")
			}
		default:
			return o, nil, fmt.Errorf("-only: unknown run %q (want http, https, mubeng)", r)
		}
	}
	if err := checkIsolation(o, runs); err != nil {
		return o, nil, err
	}
	return o, runs, nil
}

// checkIsolation refuses a run that could send traffic off the machine: a judge name must
// resolve through /etc/hosts to the judge's loopback address (proxyline's Prepare resolves it),
// and mubeng, which always asks ipinfo.io, runs only in a network namespace with no interface
// but lo.
func checkIsolation(o options, runs []string) error {
	if o.judgeName != "" {
		ip, err := hostsEntry("/etc/hosts", o.judgeName)
		if err != nil {
			return err
		}
		if ip != benchJudgeIP() {
			return fmt.Errorf("-judge-name %s: /etc/hosts maps it to %v, want %s (run inside scripts/netns-ipinfo.sh)", o.judgeName, ip, benchJudgeIP())
		}
	}
	for _, r := range runs {
		if r != runMubeng {
			continue
		}
		if o.judgeName != "ipinfo.io" {
			return errors.New("-mubeng needs -judge-name ipinfo.io: mubeng always asks https://ipinfo.io/json")
		}
		ifs, err := netInterfaces()
		if err != nil {
			return err
		}
		if len(ifs) != 1 || ifs[0] != "lo" {
			return fmt.Errorf("-mubeng: network interfaces %v: run inside a private network namespace with lo only (scripts/netns-ipinfo.sh)", ifs)
		}
	}
	return nil
}

// benchJudgeIP is the address of the lab's judges, and of the benchmark's https judge.
func benchJudgeIP() netip.Addr { return netip.AddrFrom4([4]byte{127, 0, 0, 2}) }

// hostsEntry returns the first address a hosts file gives name.
func hostsEntry(path, name string) (netip.Addr, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return netip.Addr{}, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		line, _, _ = strings.Cut(line, "#")
		f := strings.Fields(line)
		for _, h := range f[min(1, len(f)):] {
			if strings.EqualFold(h, name) {
				return netip.ParseAddr(f[0])
			}
		}
	}
	return netip.Addr{}, fmt.Errorf("-judge-name %s: not in %s (run inside scripts/netns-ipinfo.sh)", name, path)
}

// netInterfaces lists this network namespace's interfaces (/proc/net/dev is per namespace,
// unlike /sys/class/net, which shows the namespace sysfs was mounted in).
func netInterfaces() ([]string, error) {
	b, err := os.ReadFile("/proc/net/dev")
	if err != nil {
		return nil, err
	}
	var ifs []string
	for _, line := range strings.Split(string(b), "\n") {
		if name, _, ok := strings.Cut(line, ":"); ok && !strings.Contains(name, "|") {
			ifs = append(ifs, strings.TrimSpace(name))
		}
	}
	return ifs, nil
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

// serveLab is the lab child: it starts the lab and the https judge with files in -dir, says
// "ready", answers each SIGUSR1 with a line "stats ..." (the judge's handshakes since the last
// one), and serves until SIGTERM or SIGINT.
func serveLab(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("serve-lab", flag.ContinueOnError)
	dir := fs.String("dir", "", "directory for the lab files")
	name := fs.String("judge-name", "", "host name of the https judge")
	var mix counts
	mix.flags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	cfg := lab.Config{HTTP: mix.http, SOCKS5: mix.socks5, Refused: mix.refused, Blackhole: mix.blackhole, Dir: *dir}
	addr := netip.AddrPortFrom(benchJudgeIP(), 0)
	if *name != "" {
		// The proxies reach the judge by its name, as they would on the internet.
		cfg.Hosts = map[string]netip.Addr{*name: benchJudgeIP()}
		addr = netip.AddrPortFrom(benchJudgeIP(), 443)
	}
	l, err := lab.Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer l.Stop(context.WithoutCancel(ctx)) // a lab has nothing to drain: it stops at once
	j, err := startTLSJudge(addr, *name, filepath.Join(*dir, "judge-ca.pem"), slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer j.Close()
	if err := os.WriteFile(filepath.Join(*dir, "judge-https.txt"), []byte(j.url+"\n"), 0o644); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "ready")
	for {
		select {
		case <-usr1:
			fmt.Fprintf(stdout, "stats %s\n", j.takeStats())
		case <-ctx.Done():
			return nil
		}
	}
}
