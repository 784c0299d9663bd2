// Command goodworker is killtest's known-good worker: each "task" runs a checker child
// (sleep 600 stands in for mubeng) with a parent-death SIGKILL, so even a SIGKILL of the worker
// cannot orphan it; on SIGTERM it kills the running checker, waits for it and exits 0. It is
// written in Go because Go's fork sets the parent-death signal race-free (it re-checks the
// parent after prctl), which a shell with setpriv cannot.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"syscall"
)

func main() {
	// Pdeathsig fires when the thread that forked exits: keep the forks on one locked thread.
	runtime.LockOSThread()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	fmt.Println("worker ready")
	for {
		cmd := exec.Command("sleep", "600")
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "goodworker:", err)
			return
		}
		fmt.Println("task started pid", cmd.Process.Pid)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-sigs:
			_ = cmd.Process.Kill()
			<-done
			return // exit 0
		case <-done:
		}
	}
}
