// Command portholder is a known-bad system for killtest: it listens on a loopback TCP port,
// starts a child that inherits the listening socket, and on SIGTERM exits 0 without stopping
// the child, so the port stays held after the system "stopped".
//
// Usage: portholder [127.0.0.1:PORT]
package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "hold" {
		for { // the child: keep fd 3, the inherited listener, open until killed
			time.Sleep(time.Hour)
		}
	}
	addr := "127.0.0.1:47813"
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	if err := run(addr); err != nil {
		fmt.Fprintln(os.Stderr, "portholder:", err) // no readiness line: the scenario reports it
	}
}

func run(addr string) error {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		return err
	}
	cmd := exec.Command(os.Args[0], "hold")
	cmd.ExtraFiles = []*os.File{f}
	if err := cmd.Start(); err != nil {
		return err
	}
	fmt.Println("listening on", addr)
	<-sigs
	return nil // the bug: the child still holds the port
}
