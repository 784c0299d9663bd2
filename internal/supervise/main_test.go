package supervise

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/proctab"
	"github.com/proxyline/proxyline/internal/testkit"
)

// fixtureBin(t) is the misbehaving test program (testdata/fixture), built once.
func fixtureBin(t testing.TB) string {
	return testkit.BuildBinary(t, "./internal/supervise/testdata/fixture", testkit.NoRace())
}

// workerEnv switches the test binary into a mini-worker (see runMiniWorker).
const workerEnv = "SUPERVISE_TEST_WORKER"

func TestMain(m *testing.M) {
	// The test binary is its own task init, exactly as cmd/proxyline is.
	if code, ok := MaybeInit(); ok {
		os.Exit(code)
	}
	if mode := os.Getenv(nsInitEnv); mode != "" {
		os.Exit(runNSInit(mode))
	}
	if spec := os.Getenv(workerEnv); spec != "" {
		os.Exit(runMiniWorker(spec))
	}
	testkit.Main(m, testkit.Subreaper()) // its supervisors make this process a subreaper
}

// miniWorkerSpec is what the test asks of a mini-worker, as JSON in workerEnv.
type miniWorkerSpec struct {
	Bits string   // layers to disable, see layersFromBits
	Path string   // program to supervise
	Args []string // its arguments
	PTY  bool
	// Timeout is the task's Spec.Timeout. With it, the mini-worker prints "started <pid>" from
	// Spec.Started, before any output of the task.
	Timeout time.Duration
	Grace   time.Duration // the supervisor's grace; default 500 ms
	// Name is the supervisor's Config.Name; default "miniworker".
	Name string
	// TempDir, when set, makes the mini-worker create a task directory there (MkdirTask) before
	// the task starts, given to the task as Spec.TaskDir. It prints "owner <pidns>:<pid>:<start>", "cgroupdir <dir>" (when the
	// cgroup layer is on) and "taskdir <dir>" before the task's output.
	TempDir string
}

// runMiniWorker is a real, separate worker process for the "worker dies" tests: it supervises
// one task, copies the task's stdout to its own, and on SIGTERM cancels the task and stops the
// supervisor, as `proxyline worker` does.
func runMiniWorker(raw string) int {
	var spec miniWorkerSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		fmt.Fprintln(os.Stderr, "mini-worker spec:", err)
		return 3
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	// No start-up sweep: parallel tests SIGKILL other mini-workers and watch what they leave;
	// a sweep here would clean that up and could hide a failing layer.
	s, err := New(Config{Name: cmp.Or(spec.Name, "miniworker"), Disable: layersFromBits(spec.Bits), Grace: cmp.Or(spec.Grace, 500*time.Millisecond), Log: log, SkipStartSweep: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	if err := s.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	defer func() {
		// A fresh context: ctx is cancelled by the SIGTERM that stops us.
		if err := s.Stop(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, "mini-worker: stop supervisor:", err)
		}
	}()
	fmt.Fprintf(os.Stdout, "worker %d\n", os.Getpid())
	fmt.Fprintf(os.Stdout, "owner %s\n", s.owner)
	if s.ownerDir != "" {
		fmt.Fprintf(os.Stdout, "cgroupdir %s\n", s.ownerDir)
	}
	var taskDir string
	if spec.TempDir != "" {
		if taskDir, err = s.MkdirTask(spec.TempDir); err != nil {
			fmt.Fprintln(os.Stderr, "mini-worker:", err)
			return 3
		}
		fmt.Fprintf(os.Stdout, "taskdir %s\n", taskDir)
	}
	var started func(int)
	if spec.Timeout > 0 {
		started = func(pid int) { fmt.Fprintf(os.Stdout, "started %d\n", pid) }
	}
	res, err := s.Run(ctx, Spec{Path: spec.Path, Args: spec.Args, PTY: spec.PTY, Stdout: os.Stdout, Stderr: os.Stderr,
		Timeout: spec.Timeout, Started: started, TaskDir: taskDir})
	fmt.Fprintf(os.Stdout, "done %+v %v\n", res, err)
	return 0
}

// layersFromBits decodes "pdcnsk" letters (lower case = disabled).
func layersFromBits(bits string) Layers {
	return Layers{
		ProcessGroup: strings.Contains(bits, "g"),
		Pdeathsig:    strings.Contains(bits, "d"),
		Cgroup:       strings.Contains(bits, "c"),
		PIDNamespace: strings.Contains(bits, "n"),
		Subreaper:    strings.Contains(bits, "s"),
		Cookie:       strings.Contains(bits, "k"),
	}
}

// cookieOwnedBy lists live (non-zombie) processes whose cookie names owner pid, optionally
// with a task id prefix.
func cookieOwnedBy(t testing.TB, owner int, taskPrefix string) []int {
	t.Helper()
	all, err := proctab.PIDs()
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, pid := range all {
		c, err := ParseCookie(procCookie(pid))
		if err != nil || c.OwnerPID != owner || !strings.HasPrefix(c.TaskID, taskPrefix) {
			continue
		}
		if st, err := readProc(pid); err == nil && st.state != "Z" {
			pids = append(pids, pid)
		}
	}
	return pids
}

// waitNoCookie polls until no process carries a cookie of owner (with the task prefix).
func waitNoCookie(t testing.TB, owner int, taskPrefix string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		left := cookieOwnedBy(t, owner, taskPrefix)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("survivors with cookie owner %d task %q after %v: %v", owner, taskPrefix, within, describe(left))
		}
		time.Sleep(10 * time.Millisecond) // poll with a deadline
	}
}

func describe(pids []int) string {
	var b strings.Builder
	for _, pid := range pids {
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		fmt.Fprintf(&b, "[%d %q %s] ", pid, strings.ReplaceAll(string(cmd), "\x00", " "), string(stat))
	}
	return b.String()
}

// killCookieOwnedBy is the safety net of every test (t.Cleanup): SIGKILL, by pid, whatever
// still carries a cookie of owner, after re-verifying it through a pidfd.
func killCookieOwnedBy(t testing.TB, owner int, taskPrefix string) {
	for _, pid := range cookieOwnedBy(t, owner, taskPrefix) {
		raw := procCookie(pid)
		if m, err := openMember(pid, 0, func(p int) bool { return procCookie(p) == raw }); err == nil {
			_ = m.signal(syscall.SIGKILL)
			m.close()
			t.Logf("safety net killed leftover %d", pid)
		}
	}
}

// readyWriter collects output and signals when a line starting with want appears.
type readyWriter struct {
	mu    sync.Mutex
	buf   strings.Builder
	want  string
	ready chan struct{}
	once  sync.Once
}

func newReadyWriter(want string) *readyWriter {
	return &readyWriter{want: want, ready: make(chan struct{})}
}

func (w *readyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for line := range strings.SplitSeq(w.buf.String(), "\n") {
		if strings.HasPrefix(line, w.want) {
			w.once.Do(func() { close(w.ready) })
		}
	}
	return len(p), nil
}

func (w *readyWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// lineValue returns the integer after "<key> " in the output.
func lineValue(out, key string) int {
	for line := range strings.SplitSeq(out, "\n") {
		if v, ok := strings.CutPrefix(line, key+" "); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

func newStarted(t testing.TB, cfg Config) *Supervisor {
	t.Helper()
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stopSupervisor(t, s)
		killCookieOwnedBy(t, os.Getpid(), s.name+"-") // only this test's tasks: others run in parallel
	})
	return s
}

// stopSupervisor stops s with a deadline no healthy stop comes near, and fails the test if the
// stop fails.
func stopSupervisor(t testing.TB, s *Supervisor) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Errorf("stop supervisor: %v", err)
	}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

var _ io.Writer = testWriter{}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, nil))
}
