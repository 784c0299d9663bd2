// Command fakechecker stands in for mubeng in the tests of package external. It takes mubeng's
// flags (-f list, -o output, -t timeout, --check) and reports as live the proxies of the list
// whose port is even. -mode changes what it does:
//
//	live    write the live proxies to -o (default)
//	stdout  print them on stdout, between noise lines
//	extra   also report a proxy that was not in the list, and bare ones with a scheme
//	fail    write some output, complain on stderr and exit 3
//	hang    start a child in its process group and a setsid'd grandchild escapee, record every
//	        pid in -pids, ignore SIGTERM and block forever
//	escape  like live, but leave a setsid'd child running (recorded in -pids) and exit 0
//	tty     require a terminal on stdin (as mubeng does), print live proxies in colour on stdout
//	stdin   require stdin to be /dev/null (reading it ends at once), then act as live
//	args    write its arguments, one per line, to -pids, then act as live
//	none    exit 0 without writing anything
//	flood   write -n lines of proxies that are not in the list to -o (stdout without -o), exit 0
//	env     write its environment, one variable per line, to -pids, then act as live
//
// It is a test fixture: it never opens a network connection.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"golang.org/x/term"
)

func main() {
	os.Exit(run())
}

// options are the flags, mubeng's and the fixture's own.
type options struct {
	in, out, mode, pids string
	n                   int
}

func run() int {
	var o options
	flag.StringVar(&o.in, "f", "", "proxy list")
	flag.StringVar(&o.out, "o", "", "output file (stdout when empty)")
	flag.String("t", "", "timeout")
	flag.Bool("check", false, "check mode")
	flag.StringVar(&o.mode, "mode", "live", "behaviour")
	flag.StringVar(&o.pids, "pids", "", "file to append pids to (args, env: to write the arguments, the environment to)")
	flag.IntVar(&o.n, "n", 0, "lines to write (flood)")
	flag.Parse()
	if code, done := o.before(); done {
		return code
	}
	list, err := readList(o.in)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var live []string
	for _, l := range list {
		if evenPort(l) {
			live = append(live, l)
		}
	}
	return o.report(list, live)
}

// before does what a mode does before the list is read; done says the run ends there, with code.
func (o options) before() (code int, done bool) {
	switch o.mode {
	case "sleep":
		signal.Ignore(syscall.SIGTERM)
		o.record(os.Getpid())
		sleepForever()
	case "hang":
		signal.Ignore(syscall.SIGTERM)
		o.record(os.Getpid())
		for _, setsid := range []bool{false, true} {
			if err := o.startSleeper(setsid); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1, true
			}
		}
		sleepForever()
	case "args":
		code = writeLines(o.pids, os.Args[1:])
	case "none":
		return 0, true
	case "flood":
		return flood(o.out, o.n), true
	case "env":
		code = writeLines(o.pids, os.Environ())
	case "tty":
		if !term.IsTerminal(0) {
			fmt.Fprintln(os.Stderr, "fakechecker: stdin is not a terminal")
			return 2, true
		}
	case "stdin":
		if !stdinIsDevNull() {
			fmt.Fprintln(os.Stderr, "fakechecker: stdin is not /dev/null")
			return 2, true
		}
	}
	return code, code != 0
}

// report reports the live proxies of the list as the mode says.
func (o options) report(list, live []string) int {
	switch o.mode {
	case "extra":
		live = append(live, "http://127.0.0.99:1")
		for _, l := range list {
			if !strings.Contains(l, "://") {
				live = append(live, "socks5://"+l)
			}
		}
	case "fail":
		_ = writeLines(o.out, live[:len(live)/2])
		fmt.Fprintln(os.Stderr, "fakechecker: something broke")
		return 3
	case "escape":
		if err := o.startSleeper(true); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	case "stdout", "tty":
		fmt.Println("fakechecker v0 starting")
		for _, l := range live {
			fmt.Printf("\x1b[32m%s\x1b[0m\n", l)
		}
		fmt.Println("\x1b[1mdone\x1b[0m: all checked")
		return 0
	}
	return writeLines(o.out, live)
}

// record appends pid to the -pids file.
func (o options) record(pid int) {
	if o.pids == "" {
		return
	}
	f, err := os.OpenFile(o.pids, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	fmt.Fprintln(f, pid)
	f.Close()
}

// startSleeper starts this program in mode sleep (in a new session with setsid), which records
// its pid and ignores SIGTERM.
func (o options) startSleeper(setsid bool) error {
	cmd := exec.Command(os.Args[0], "-mode", "sleep", "-pids", o.pids)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: setsid}
	return cmd.Start()
}

// stdinIsDevNull reports whether stdin is /dev/null, and reading it ends at once.
func stdinIsDevNull() bool {
	var st, null syscall.Stat_t
	if syscall.Fstat(0, &st) != nil || syscall.Stat(os.DevNull, &null) != nil || st.Rdev != null.Rdev {
		return false
	}
	n, _ := os.Stdin.Read(make([]byte, 1))
	return n == 0
}

// sleepForever blocks (select{} would be a deadlock to the Go runtime: no other goroutine runs).
func sleepForever() {
	for {
		time.Sleep(time.Hour)
	}
}

func readList(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var list []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			list = append(list, l)
		}
	}
	return list, sc.Err()
}

// evenPort reports whether the line's port (after the last ':') is even.
func evenPort(l string) bool {
	i := strings.LastIndexByte(l, ':')
	if i < 0 || i == len(l)-1 {
		return false
	}
	d := l[len(l)-1]
	return (d-'0')%2 == 0
}

func writeLines(path string, lines []string) int {
	w := os.Stdout
	if path != "" {
		f, err := os.Create(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer f.Close()
		w = f
	}
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
	return 0
}

// flood writes n proxy lines that are in no list (10.x addresses, which nothing connects to).
func flood(path string, n int) int {
	f := os.Stdout
	if path != "" {
		var err error
		if f, err = os.Create(path); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer f.Close()
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for i := range n {
		fmt.Fprintf(w, "http://10.%d.%d.%d:%d\n", i>>16&255, i>>8&255, i&255, 1024+i%60000)
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
