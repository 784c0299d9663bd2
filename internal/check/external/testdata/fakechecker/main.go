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

func run() int {
	in := flag.String("f", "", "proxy list")
	out := flag.String("o", "", "output file (stdout when empty)")
	flag.String("t", "", "timeout")
	flag.Bool("check", false, "check mode")
	mode := flag.String("mode", "live", "behaviour")
	pids := flag.String("pids", "", "file to append pids to (args: to write the arguments to)")
	flag.Parse()

	record := func(pid int) {
		if *pids == "" {
			return
		}
		f, err := os.OpenFile(*pids, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return
		}
		fmt.Fprintln(f, pid)
		f.Close()
	}

	switch *mode {
	case "sleep":
		signal.Ignore(syscall.SIGTERM)
		record(os.Getpid())
		sleepForever()
	case "hang":
		signal.Ignore(syscall.SIGTERM)
		record(os.Getpid())
		for _, setsid := range []bool{false, true} {
			cmd := exec.Command(os.Args[0], "-mode", "sleep", "-pids", *pids)
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: setsid}
			if err := cmd.Start(); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
		sleepForever()
	case "args":
		if code := writeLines(*pids, os.Args[1:]); code != 0 {
			return code
		}
	case "none":
		return 0
	case "tty":
		if !term.IsTerminal(0) {
			fmt.Fprintln(os.Stderr, "fakechecker: stdin is not a terminal")
			return 2
		}
	case "stdin":
		var st syscall.Stat_t
		var null syscall.Stat_t
		if syscall.Fstat(0, &st) != nil || syscall.Stat(os.DevNull, &null) != nil || st.Rdev != null.Rdev {
			fmt.Fprintln(os.Stderr, "fakechecker: stdin is not /dev/null")
			return 2
		}
		if n, _ := os.Stdin.Read(make([]byte, 1)); n != 0 {
			return 2
		}
	}

	list, err := readList(*in)
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
	switch *mode {
	case "extra":
		live = append(live, "http://127.0.0.99:1")
		for _, l := range list {
			if !strings.Contains(l, "://") {
				live = append(live, "socks5://"+l)
			}
		}
	case "fail":
		_ = writeLines(*out, live[:len(live)/2])
		fmt.Fprintln(os.Stderr, "fakechecker: something broke")
		return 3
	case "escape":
		cmd := exec.Command(os.Args[0], "-mode", "sleep", "-pids", *pids)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
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
	return writeLines(*out, live)
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
