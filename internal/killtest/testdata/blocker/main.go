// Command blocker is a part of killtest's known-bad and known-good systems: a loopback server
// and a client that blocks on it, so that a client orphaned by a killed worker runs on until the
// server (a sibling component) is stopped.
//
// Usage:
//
//	blocker serve 127.0.0.1:PORT   listen; hold every connection open; exit 0 on SIGTERM
//	blocker client 127.0.0.1:PORT  connect and read until the server closes; exit 0
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: blocker serve|client 127.0.0.1:PORT")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2])
	case "client":
		err = client(os.Args[2])
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "blocker:", err)
		os.Exit(1)
	}
}

func serve(addr string) error {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	conns := make(chan net.Conn)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns <- c
		}
	}()
	fmt.Println("serving on", addr)
	var held []net.Conn
	for {
		select {
		case c := <-conns:
			held = append(held, c)
		case <-sigs:
			ln.Close()
			for _, c := range held {
				c.Close()
			}
			return nil
		}
	}
}

func client(addr string) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = io.Copy(io.Discard, c) // until the server closes the connection
	return err
}
