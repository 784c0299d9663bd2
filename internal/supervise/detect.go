package supervise

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/proxyline/proxyline/internal/proctab"
)

// detection is what Detect found.
type detection struct {
	layers       Layers
	cgroupParent string
}

// Detect reports which layers this machine and binary allow under cfg (Disable applied). It
// starts two short probe processes (the binary re-executed as a task init) and creates and
// removes a probe cgroup; it changes nothing else. `proxyline status` shows its result.
func Detect(ctx context.Context, cfg Config) Layers {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return detect(ctx, cfg, log).layers
}

func detect(ctx context.Context, cfg Config, log *slog.Logger) detection {
	var d detection
	off := cfg.Disable
	d.layers.ProcessGroup = !off.ProcessGroup
	d.layers.Pdeathsig = !off.Pdeathsig
	if err := proctab.CheckOwnEnviron(); err != nil {
		log.Warn("cookie layer off: /proc not readable", "err", err)
	} else if err := proctab.CheckOwnProc(); err != nil {
		// The pids in /proc are not ours: cookie scans and sweeps would judge other processes.
		log.Warn("cookie layer off, no start-up sweep", "err", err)
	} else {
		d.layers.Cookie = !off.Cookie
	}
	if !off.Subreaper {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			log.Warn("subreaper layer off", "err", err)
		} else {
			d.layers.Subreaper = true
		}
	}
	if !off.Cgroup {
		parent := cfg.CgroupParent
		var err error
		if parent == "" {
			parent, err = DefaultCgroupParent()
		}
		if err == nil {
			err = probeCgroup(ctx, parent)
		}
		if err != nil {
			log.Info("cgroup layer off", "err", err)
		} else {
			d.layers.Cgroup = true
			d.cgroupParent = parent
		}
	}
	if d.cgroupParent == "" && cfg.CgroupParent != "" {
		d.cgroupParent = cfg.CgroupParent // still swept for leftovers
	} else if d.cgroupParent == "" {
		d.cgroupParent, _ = DefaultCgroupParent()
	}
	if !off.PIDNamespace {
		if err := probeInit(ctx, true); err != nil {
			log.Info("pid namespace layer off", "err", err)
		} else {
			d.layers.PIDNamespace = true
		}
	}
	return d
}

// probeCgroup checks that a task cgroup can be created under parent, a process placed in it at
// birth (clone3 CLONE_INTO_CGROUP) and the cgroup removed again.
func probeCgroup(ctx context.Context, parent string) error {
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", parent, err)
	}
	dir, err := os.MkdirTemp(parent, "probe-")
	if err != nil {
		return fmt.Errorf("create probe cgroup in %s: %w", parent, err)
	}
	defer cgroupKillRemove(dir, 5*time.Second)
	if _, err := os.Stat(filepath.Join(dir, "cgroup.procs")); err != nil {
		return fmt.Errorf("%s is not a cgroup v2 directory: %w", parent, err)
	}
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open probe cgroup: %w", err)
	}
	defer f.Close()
	cmd := probeCommand(ctx)
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(f.Fd()), Pdeathsig: syscall.SIGKILL, Setpgid: true}
	runtime.LockOSThread() // Pdeathsig is per thread (go.dev/issue/27505)
	defer runtime.UnlockOSThread()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start a process in a cgroup: %w", err)
	}
	_ = cmd.Wait() // only the placement at birth matters here; probeInit judges the answer
	return nil
}

// probeInit checks that this binary answers as a task init (MaybeInit is wired in) and, with
// newPID, that it can be started as PID 1 of a new PID namespace.
func probeInit(ctx context.Context, newPID bool) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := probeCommand(ctx)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if newPID {
		setPIDNamespace(cmd.SysProcAttr)
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("probe init: %w (stderr %q)", err, firstLine(errOut.String()))
	}
	want := probeReply
	if newPID {
		want += "1"
	}
	if !bytes.HasPrefix(out.Bytes(), []byte(want)) {
		return errors.New("probe init: the binary does not call supervise.MaybeInit first in main/TestMain")
	}
	return nil
}

// selfExe names the running binary even if its file was replaced or deleted since. It is a path
// to execute, not a read of the process table, so it stays here rather than in proctab.
const selfExe = "/proc/self/exe"

// probeCommand re-executes this binary in init probe mode. A binary that does not call
// MaybeInit ignores the mode; the -test.run=^$ argument then keeps a test binary from running
// its tests (a proxyline binary rejects it as an unknown command).
func probeCommand(ctx context.Context) *exec.Cmd {
	cmd := exec.CommandContext(ctx, selfExe)
	cmd.Args = []string{initArg0, "-test.run=^$"}
	cmd.Env = []string{initEnv + "=probe", noRaceSleep}
	cmd.WaitDelay = time.Second
	return cmd
}

// setPIDNamespace asks for a new PID namespace; without root, inside a new user namespace that
// maps our own uid and gid.
func setPIDNamespace(sys *syscall.SysProcAttr) {
	sys.Cloneflags |= syscall.CLONE_NEWPID
	if os.Geteuid() != 0 {
		sys.Cloneflags |= syscall.CLONE_NEWUSER
		sys.UidMappings = []syscall.SysProcIDMap{{ContainerID: os.Geteuid(), HostID: os.Geteuid(), Size: 1}}
		sys.GidMappings = []syscall.SysProcIDMap{{ContainerID: os.Getegid(), HostID: os.Getegid(), Size: 1}}
		sys.GidMappingsEnableSetgroups = false
	}
}

func firstLine(s string) string {
	if i := bytes.IndexByte([]byte(s), '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
