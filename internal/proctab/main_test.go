package proctab

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(cgroupHelperEnv); mode != "" {
		os.Exit(runCgroupHelper(mode, os.Args[2:])) // os.Args[1] is -test.run=^$
	}
	goleak.VerifyTestMain(m)
}
