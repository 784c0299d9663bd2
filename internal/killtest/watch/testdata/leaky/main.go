// Command leaky is a deliberately leaky system for killtest watch's tests, each mode a known-bad
// (or known-good) fixture:
//
//	leaky reaper KEY=VALUE [--cgroup DIR] -- PROGRAM ARGS...
//	                                            a tiny service manager: a child subreaper that
//	                                            starts PROGRAM with KEY=VALUE in its environment
//	                                            (born in the cgroup DIR, if given),
//	                                            reaps whatever re-parents to it, and on SIGTERM
//	                                            kills every child it has until none is left
//	leaky worker MODE [ID], with MODE:
//	leaky worker orphan   starts a task that starts a checker and exits: the checker is orphaned
//	leaky worker fds      opens two pipes every 20 ms (up to 4000): fd growth
//	leaky worker rss      allocates and touches 4 MiB every 25 ms (up to 1 GiB): memory growth
//	leaky worker clean    a checker child with a parent-death signal; nothing grows
//	leaky alert-sink DIR  copies its stdin to DIR/alert-<pid>.json (an alert command)
//
// Every worker prints "ready" on stdout once its leak is under way; its checker gets its ID
// (leaky checker ID).
package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: leaky reaper|worker|task|checker|alert-sink ...")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "reaper":
		err = reaper(os.Args[2:])
	case "worker":
		err = worker(os.Args[2:])
	case "task":
		err = start(false, append([]string{"checker"}, os.Args[2:]...)...)
	case "checker":
		sleepForever()
	case "alert-sink":
		err = sink(os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "leaky:", err)
		os.Exit(1)
	}
}

// start runs this program again with args, with a parent-death SIGKILL when pdeath.
func start(pdeath bool, args ...string) error {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if pdeath {
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	}
	return cmd.Start()
}

// held keeps what rss allocates reachable.
var held [][]byte

func worker(args []string) error {
	if len(args) < 1 {
		return fmt.Errorf("worker MODE [ID]")
	}
	id := args[1:] // passed on to the checker, so that a test's parent rules see its own system
	switch args[0] {
	case "orphan":
		task := exec.Command(os.Args[0], append([]string{"task"}, id...)...)
		task.Stdout, task.Stderr = os.Stdout, os.Stderr
		if err := task.Run(); err != nil {
			return err
		}
		fmt.Println("ready")
	case "clean":
		if err := start(true, append([]string{"checker"}, id...)...); err != nil {
			return err
		}
		fmt.Println("ready")
	case "fds":
		fmt.Println("ready")
		for range 2000 {
			for range 2 {
				if _, _, err := os.Pipe(); err != nil {
					return err
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	case "rss":
		fmt.Println("ready")
		for range 256 {
			b := make([]byte, 4<<20)
			for i := 0; i < len(b); i += 4096 {
				b[i] = 1
			}
			held = append(held, b)
			time.Sleep(25 * time.Millisecond)
		}
	default:
		return fmt.Errorf("unknown worker mode %q", args[0])
	}
	sleepForever()
	return nil
}

// sleepForever blocks until the process is killed (select{} would be a deadlock to the runtime).
func sleepForever() {
	for {
		time.Sleep(time.Hour)
	}
}

func reaper(args []string) error {
	cgroup := ""
	if len(args) > 2 && args[1] == "--cgroup" {
		cgroup, args = args[2], append(args[:1:1], args[3:]...)
	}
	if len(args) < 3 || args[1] != "--" {
		return fmt.Errorf("reaper KEY=VALUE [--cgroup DIR] -- PROGRAM ARGS...")
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return err
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	cmd := exec.Command(args[2], args[3:]...)
	cmd.Env = append(os.Environ(), args[0])
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if cgroup != "" {
		// The program (and all it starts) is born in the cgroup; the reaper stays outside, as a
		// service manager does.
		fd, err := syscall.Open(cgroup, syscall.O_DIRECTORY|syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer syscall.Close(fd)
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	<-term
	// Kill every child (orphans re-parent to us meanwhile) and reap until none is left. As a
	// process of its own, the reaper may wait for any child.
	for {
		for _, pid := range children() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		var ws syscall.WaitStatus
		if _, err := syscall.Wait4(-1, &ws, 0, nil); err == syscall.ECHILD {
			return nil
		}
	}
}

// children lists the pids whose parent is this process. It reads /proc itself, not through
// internal/proctab: leaky stands for a foreign system under test and imports nothing of proxyline.
func children() []int {
	var out []int
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	me := os.Getpid()
	for _, d := range dirs {
		b, err := os.ReadFile(d)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces and ')', so parse after the last ')'.
		var pid, ppid int
		var state string
		i := lastParen(b)
		if i < 0 {
			continue
		}
		if _, err := fmt.Sscanf(string(b[i+2:]), "%s %d", &state, &ppid); err != nil || ppid != me {
			continue
		}
		fmt.Sscanf(filepath.Base(filepath.Dir(d)), "%d", &pid)
		out = append(out, pid)
	}
	return out
}

func lastParen(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == ')' {
			return i
		}
	}
	return -1
}

func sink(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("alert-sink DIR")
	}
	b, err := io.ReadAll(os.Stdin)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(args[0], fmt.Sprintf("alert-%d.json", os.Getpid())), b, 0o600)
}
