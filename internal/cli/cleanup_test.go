package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/supervise"
)

// proc is a real proxyline process: this test binary re-executed as proxyline (asMainEnv).
type proc struct {
	cmd    *exec.Cmd
	waited chan struct{}
	mu     sync.Mutex
	stderr bytes.Buffer // guarded by mu
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.Write(b)
}

func (p *proc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// startProxyline starts `proxyline args...` with TMPDIR=tmpdir. It dies with the test process
// (Pdeathsig) and is killed, by its pid, at the end of the test.
func startProxyline(t *testing.T, tmpdir string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(os.Args[0], args...), waited: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), asMainEnv+"=1", "TMPDIR="+tmpdir)
	p.cmd.Stderr = p
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.waited) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill() // through Go's pidfd: a no-op once it has exited
		<-p.waited
		// Whatever its tasks left (none, with every layer): stopped by owner, nobody else's.
		var out bytes.Buffer
		run(context.Background(), &Env{Stdout: &out, Stderr: &out}, []string{"cleanup", "--temp-dir", tmpdir, "--owner", strconv.Itoa(p.cmd.Process.Pid)})
	})
	return p
}

// waitFile polls until path exists.
func waitFile(t *testing.T, p *proc, path string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		select {
		case <-p.waited:
			t.Fatalf("proxyline exited before %s appeared:\n%s", path, p.log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear:\n%s", path, p.log())
		}
		time.Sleep(10 * time.Millisecond) // polling interval, bounded by the deadline
	}
}

// taskDirs lists the task directories in dir.
func taskDirs(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), supervise.TaskDirPrefix) {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out
}

// killed SIGKILLs the process and waits for it.
func (p *proc) killed(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.waited
}

func runCleanup(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), &Env{Stdout: &stdout, Stderr: &stderr}, append([]string{"cleanup"}, args...))
	return code, stdout.String() + stderr.String()
}

// TestCleanupAfterKilledCheckExec: a real `proxyline check --exec` SIGKILLed in the middle of a
// run leaves its run directory (the chunk, credentials included) when it runs without the PID
// namespace layer (with it, the task's init removes the directory: internal/supervise's
// TestInitRemovesTaskDirOnWorkerSIGKILL, killtest's test2); `proxyline cleanup` lists it
// (--dry-run) and removes it, keeps the directory of a live check, and leaves a planted
// symbolic link named like a dead owner's directory alone, not following it.
func TestCleanupAfterKilledCheckExec(t *testing.T) {
	t.Parallel()
	tmp, work := t.TempDir(), t.TempDir()
	list := filepath.Join(work, "list.txt")
	if err := os.WriteFile(list, []byte("http://user:pw-secret@127.0.0.2:1\nsocks5://127.0.0.3:2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	start := func(mark string) *proc {
		p := startProxyline(t, tmp, "check", "-f", list, "-t", "2s",
			"--exec", "sh -c 'touch "+mark+"; exec sleep 600' {in}", "--disable-layers", "pid_namespace")
		waitFile(t, p, mark)
		return p
	}
	// The live check starts first: a check's start-up sweep would remove the dead one's directory.
	live := start(filepath.Join(work, "live-started"))
	dirs := taskDirs(t, tmp)
	if len(dirs) != 1 {
		t.Fatalf("task directories %v, want one", dirs)
	}
	liveDir := dirs[0]
	dead := start(filepath.Join(work, "dead-started"))
	var deadDir string
	for _, d := range taskDirs(t, tmp) {
		if d != liveDir {
			deadDir = d
		}
	}
	if fi, err := os.Stat(deadDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("run directory %q: %v, %v; want mode 0700", deadDir, fi, err)
	}
	if b, err := os.ReadFile(filepath.Join(deadDir, "in.txt")); err != nil || !strings.Contains(string(b), "pw-secret") {
		t.Fatalf("chunk file: %q, %v", b, err)
	}
	dead.killed(t)
	if _, err := os.Stat(filepath.Join(deadDir, "in.txt")); err != nil {
		t.Fatalf("after SIGKILL the run directory should still be there (the test could not fail otherwise): %v", err)
	}

	// A link named like one of the dead check's directories, pointing at something of ours.
	victim := filepath.Join(work, "victim")
	if err := os.Mkdir(victim, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(victim, "keep"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	planted := deadDir[:len(deadDir)-8] + "ffffffff"
	if err := os.Symlink(victim, planted); err != nil {
		t.Fatal(err)
	}
	deadPid := strconv.Itoa(dead.cmd.Process.Pid)

	// The kernel ends the killed check's task tree (its PID namespace, through the init's
	// parent-death signal) a moment after the check itself, later on a busy machine: poll the dry
	// run, with a deadline, until no process of the dead check is left, then look at the disk.
	var (
		code int
		out  string
		rep  supervise.SweepReport
	)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		code, out = runCleanup(t, "--dry-run", "--json", "--temp-dir", tmp, "--owner", deadPid)
		rep = supervise.SweepReport{}
		if err := json.Unmarshal([]byte(out[:strings.LastIndexByte(out, '}')+1]), &rep); err != nil {
			t.Fatalf("cleanup --json: %v\n%s", err, out)
		}
		if len(rep.Processes) == 0 || time.Now().After(deadline) {
			break
		}
	}
	// Found: the directory, and the killed check's empty cgroup directory where cgroups work.
	if code != ExitFailure || rep.Found() != 1+len(rep.Cgroups) || len(rep.Dirs) != 2 || len(rep.Processes) != 0 {
		t.Fatalf("dry run: exit %d, %+v; want exit 1 and the dead check's directory", code, rep)
	}
	for _, d := range rep.Dirs {
		if (d.Path == deadDir && (d.Action != "would remove" || d.Bytes == 0)) || (d.Path == planted && !strings.HasPrefix(d.Action, "skipped")) {
			t.Errorf("dry run: %+v", d)
		}
	}

	if code, out := runCleanup(t, "--temp-dir", tmp, "--owner", strconv.Itoa(live.cmd.Process.Pid)); code != ExitOK || !strings.Contains(out, "nothing left behind") {
		t.Errorf("cleanup of a live check's pid: exit %d\n%s", code, out)
	}
	if code, out := runCleanup(t, "--temp-dir", tmp, "--owner", deadPid); code != ExitOK || !strings.Contains(out, "removed") {
		t.Errorf("cleanup: exit %d\n%s", code, out)
	}
	if _, err := os.Lstat(deadDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the killed check's run directory is still there: %v", err)
	}
	if fi, err := os.Lstat(planted); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the planted link was touched: %v, %v", fi, err)
	}
	if _, err := os.Stat(filepath.Join(victim, "keep")); err != nil {
		t.Errorf("the link was followed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(liveDir, "in.txt")); err != nil {
		t.Errorf("the live check's run directory was touched: %v", err)
	}

	// The live check, interrupted, removes its own directory.
	if err := live.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-live.waited:
	case <-time.After(30 * time.Second):
		t.Fatalf("check did not exit after SIGINT:\n%s", live.log())
	}
	if _, err := os.Lstat(liveDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("interrupted check left its run directory: %v", err)
	}
}

// TestWorkerStartSweepsTaskDirs: a real `proxyline worker --exec` on SQLite SIGKILLed in the
// middle of a job leaves its run directory (without the PID namespace layer, whose task init
// would remove it at once); the next worker's start-up sweep removes it.
func TestWorkerStartSweepsTaskDirs(t *testing.T) {
	t.Parallel()
	tmp, work := t.TempDir(), t.TempDir()
	db := filepath.Join(work, "queue.db")
	list := filepath.Join(work, "list.txt")
	if err := os.WriteFile(list, []byte("http://127.0.0.2:1\nhttp://127.0.0.2:2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if code := run(context.Background(), &Env{Stdout: &out, Stderr: &out},
		[]string{"enqueue", "--database", db, "--judge", "http://127.0.0.1:9/", list}); code != ExitOK {
		t.Fatalf("enqueue: exit %d\n%s", code, out.String())
	}
	mark := filepath.Join(work, "started")
	first := startProxyline(t, tmp, "worker", "--database", db, "--exec", "sh -c 'touch "+mark+"; exec sleep 600' {in}",
		"--disable-layers", "pid_namespace")
	waitFile(t, first, mark)
	dirs := taskDirs(t, tmp)
	if len(dirs) != 1 {
		t.Fatalf("task directories %v, want one", dirs)
	}
	first.killed(t)
	if _, err := os.Stat(filepath.Join(dirs[0], "in.txt")); err != nil {
		t.Fatalf("after SIGKILL the run directory should still be there (the test could not fail otherwise): %v", err)
	}

	second := startProxyline(t, tmp, "worker", "--database", db, "--grace", "1s", "--exec", "sh -c 'exit 0' {in}")
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Lstat(dirs[0]); errors.Is(err, os.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the next worker's start-up sweep did not remove %s:\n%s", dirs[0], second.log())
		}
		time.Sleep(10 * time.Millisecond) // polling interval, bounded by the deadline
	}
	if err := second.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-second.waited:
	case <-time.After(30 * time.Second):
		t.Fatalf("worker did not stop after SIGTERM:\n%s", second.log())
	}
	if !strings.Contains(second.log(), "start-up sweep removed leftovers") {
		t.Errorf("the worker did not log its sweep:\n%s", second.log())
	}
}
