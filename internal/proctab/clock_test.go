package proctab

import (
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"testing"
	"time"
)

// TestStartClock: the harness's own start time lies between the boot and now, and a child
// started after BootTicks has a start time at or after it.
func TestStartClock(t *testing.T) {
	t.Parallel()
	before, err := BootTicks()
	if err != nil {
		t.Fatal(err)
	}
	self, err := Stat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if self.StartTime > before {
		t.Fatalf("own start time %d after the boot clock %d", self.StartTime, before)
	}
	at := StartedAt(self.StartTime)
	if at.After(time.Now()) || time.Since(at) > time.Hour {
		t.Fatalf("own start %v: want within the last hour", at)
	}
	c := startSleeper(t)
	if c.StartTime < before {
		t.Fatalf("child start time %d before the boot clock %d read earlier", c.StartTime, before)
	}
}

// TestKernelThread: kthreadd (pid 2) and its children are kernel threads; this process is not.
func TestKernelThread(t *testing.T) {
	t.Parallel()
	snap, err := NewReader().Snapshot(nil)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(snap, func(p Proc) bool { return p.PID == 2 })
	if i < 0 {
		t.Skip("no pid 2 in this PID namespace")
	}
	if !snap[i].KernelThread() {
		t.Errorf("kthreadd %+v: not a kernel thread", snap[i])
	}
	kids := 0
	for _, p := range snap {
		if p.PPID == 2 {
			kids++
			if p.Flags&pfKthread == 0 {
				t.Errorf("child of kthreadd %+v: PF_KTHREAD not set", p)
			}
		}
		if p.PID == os.Getpid() && p.KernelThread() {
			t.Errorf("this process %+v taken for a kernel thread", p)
		}
	}
	if kids == 0 {
		t.Error("no kernel thread under kthreadd")
	}
}

// TestPortHolders: a listener of this process is found with its command line.
func TestPortHolders(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	hs, _, err := PortHolders("127.0.0.1", port)
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) != 1 || hs[0].PID != os.Getpid() || len(hs[0].Cmdline) == 0 || hs[0].Addr != ln.Addr().String() {
		t.Fatalf("holders of %d = %+v, want this process", port, hs)
	}
	// The same port on another loopback address (as the lab listens) holds nothing of 127.0.0.1:
	// it was named as a holder too before.
	other, err := net.Listen("tcp", net.JoinHostPort("127.0.0.2", strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if hs, _, err := PortHolders("127.0.0.1", port); err != nil || len(hs) != 1 || hs[0].Addr != ln.Addr().String() {
		t.Fatalf("holders of 127.0.0.1:%d with 127.0.0.2 listening too = %+v, %v: want only 127.0.0.1's", port, hs, err)
	}
	if hs, _, err := PortHolders("", port); err != nil || len(hs) != 1 {
		t.Fatalf("holders of any address on %d = %+v, %v: want one holder (this process)", port, hs, err)
	}
	ln.Close()
	other.Close()
	if hs, _, err := PortHolders("127.0.0.1", port); err != nil || len(hs) != 0 {
		t.Fatalf("after close: %+v, %v", hs, err)
	}
}

// startSleeper starts `sleep 30` and returns its stat once it is in the table.
func startSleeper(t *testing.T) Proc {
	t.Helper()
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	p, err := Stat(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestBootTime: the boot time of /proc/stat (to the second) agrees with the one CLOCK_BOOTTIME
// gives (StartedAt of a start time of 0), and precedes our own start.
func TestBootTime(t *testing.T) {
	t.Parallel()
	boot, err := BootTime()
	if err != nil {
		t.Fatal(err)
	}
	if d := StartedAt(0).Sub(boot); d < -2*time.Second || d > 2*time.Second {
		t.Errorf("BootTime = %v, CLOCK_BOOTTIME says %v", boot, StartedAt(0))
	}
	own, err := OwnStat()
	if err != nil || StartedAt(own.StartTime).Before(boot) {
		t.Errorf("own start %v (%v) before boot %v", StartedAt(own.StartTime), err, boot)
	}
}
