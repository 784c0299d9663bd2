package supervise

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/testkit"
)

// stopLayerSets are the layer sets under which a stop is checked: every layer; no PID namespace
// (the cgroup and the group reach the task); the process group and cookie only.
var stopLayerSets = []struct {
	name    string
	disable Layers
}{
	{"all layers", Layers{}},
	{"no pid namespace", Layers{PIDNamespace: true}},
	{"group and cookie only", Layers{PIDNamespace: true, Cgroup: true}},
}

// TestOneSIGTERMPerStop: a task cancelled by its context (the path of a timeout too), or stopped
// by Supervisor.Stop, gets exactly one SIGTERM in each of its processes, then SIGKILL after the
// grace. The fixture and its
// child log every SIGTERM they get and never exit on one, so they live through the whole grace
// and would log a second SIGTERM from any layer (the init, the group, the cgroup, the clean-up of
// leftovers) that sent one.
func TestOneSIGTERMPerStop(t *testing.T) {
	for i, ls := range stopLayerSets {
		for _, how := range []string{"cancel", "stop"} {
			t.Run(ls.name+"/"+how, func(t *testing.T) {
				t.Parallel()
				// A name of its own: the clean-up kills leftovers by name, and the subtests run
				// in parallel.
				name := "oneterm" + string(rune('a'+i)) + how
				s := newStarted(t, Config{Name: name, Disable: ls.disable, Grace: 2 * time.Second, SkipStartSweep: true})
				log := filepath.Join(t.TempDir(), "signals")
				out := newReadyWriter("ready")
				spec := Spec{Path: fixtureBin(t), Args: []string{"countterm", log}, Stdout: out, Stderr: testWriter{t}}
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				go func() {
					select {
					case <-out.ready:
						if how == "cancel" {
							cancel()
						} else {
							stopSupervisor(t, s)
						}
					case <-ctx.Done():
					}
				}()
				res, err := s.Run(ctx, spec)
				if want := map[string]error{"cancel": context.Canceled, "stop": ErrStopped}[how]; !errors.Is(err, want) {
					t.Fatalf("run: %+v, %v; want %v", res, err, want)
				}
				child := lineValue(out.String(), "child")
				if child == 0 || !strings.Contains(out.String(), "ready") {
					t.Fatalf("fixture not set up before the stop (the test could not fail): %q", out.String())
				}
				b, err := os.ReadFile(log)
				if err != nil {
					t.Fatalf("no SIGTERM logged: %v", err)
				}
				counts := map[string]int{}
				for line := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
					counts[line]++
				}
				if len(counts) != 2 {
					t.Errorf("SIGTERMs logged by %d processes, want the fixture and its child: %q", len(counts), b)
				}
				for who, n := range counts {
					if n != 1 {
						t.Errorf("%q: %d SIGTERMs, want exactly one", who, n)
					}
				}
				if !res.Signaled || res.Signal != "SIGKILL" {
					t.Errorf("result %+v: want the fixture killed by SIGKILL after the grace", res)
				}
			})
		}
	}
}

// TestNestedTaskCgroups: a task that makes sub-cgroups of its own cgroup (two levels, a process
// in the deeper one) is stopped, or ends leaving that process behind: the process is killed and
// the whole task cgroup tree removed, deepest first (rmdir of a cgroup with children fails with
// EBUSY), and the next task starts.
func TestNestedTaskCgroups(t *testing.T) {
	for i, ls := range stopLayerSets[:2] {
		for _, how := range []string{"cancel", "exit"} {
			t.Run(ls.name+"/"+how, func(t *testing.T) {
				t.Parallel()
				name := "nestedcg" + string(rune('a'+i)) + how
				s := newStarted(t, Config{Name: name, Disable: ls.disable, Grace: 200 * time.Millisecond, SkipStartSweep: true})
				if !s.Layers().Cgroup {
					if os.Getenv("CI") != "" {
						t.Fatal("CI needs the cgroup layer")
					}
					t.Skip("no cgroup layer here")
				}
				out := newReadyWriter("ready")
				args := []string{"subcgroup"}
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				if how == "exit" {
					args = append(args, "exit")
				} else {
					go func() {
						select {
						case <-out.ready:
							cancel()
						case <-ctx.Done():
						}
					}()
				}
				res, err := s.Run(ctx, Spec{Path: fixtureBin(t), Args: args, Stdout: out, Stderr: testWriter{t}})
				if (how == "exit" && err != nil) || (how == "cancel" && !errors.Is(err, context.Canceled)) {
					t.Fatalf("run: %+v, %v", res, err)
				}
				sub := ""
				for line := range strings.SplitSeq(out.String(), "\n") {
					if v, ok := strings.CutPrefix(line, "subcgroup "); ok {
						sub = v
					}
				}
				if sub == "" || !strings.HasPrefix(sub, s.ownerDir+"/") {
					t.Fatalf("the fixture made no sub-cgroup in its task cgroup (the test could not fail): %q", out.String())
				}
				if how == "exit" && len(res.Escaped) == 0 {
					t.Errorf("result %+v: the child left in the sub-cgroup is not reported as escaped", res)
				}
				taskDir := filepath.Dir(filepath.Dir(sub))
				for _, d := range []string{sub, taskDir} {
					if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
						t.Errorf("%s still there after the task: %v", d, err)
					}
				}
				if _, err := s.Run(context.Background(), Spec{Path: "/bin/true"}); err != nil {
					t.Errorf("next task: %v", err)
				}
			})
		}
	}
}

// TestInitRemovesTaskDirOnWorkerSIGKILL: a worker (a real separate process) SIGKILLed while a task
// runs with its task directory (Spec.TaskDir) leaves nothing: with the PID namespace layer the
// task's init learns of the death from its lifeline, kills its namespace and removes the
// directory, with no sweep and no later command.
func TestInitRemovesTaskDirOnWorkerSIGKILL(t *testing.T) {
	t.Parallel()
	if !Detect(t.Context(), Config{}).PIDNamespace {
		if os.Getenv("CI") != "" {
			t.Fatal("CI needs the PID namespace layer")
		}
		t.Skip("no PID namespace layer here")
	}
	base := t.TempDir()
	cmd, out, waited := startMiniWorkerSpec(t, miniWorkerSpec{Path: fixtureBin(t), Args: []string{"escapee"}, TempDir: base}, "ready")
	dir := ""
	for line := range strings.SplitSeq(out.String(), "\n") {
		if v, ok := strings.CutPrefix(line, "taskdir "); ok {
			dir = v
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "in.txt"), []byte("http://user:secret@127.0.0.2:1\n"), 0o600); err != nil {
		t.Fatalf("task directory %q: %v", dir, err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-waited
	waitNoCookie(t, cmd.Process.Pid, "", 10*time.Second)
	testkit.WaitFor(t, 10*time.Second, "the killed worker's task directory removed by its task's init", func() bool {
		_, err := os.Lstat(dir)
		return errors.Is(err, os.ErrNotExist)
	})
}

// TestTaskDirMustBeOurs: Run refuses a Spec.TaskDir that this supervisor's MkdirTask did not
// name (the init would remove it).
func TestTaskDirMustBeOurs(t *testing.T) {
	t.Parallel()
	s := newStarted(t, Config{Name: "taskdirours", SkipStartSweep: true})
	other := newStarted(t, Config{Name: "taskdirours", SkipStartSweep: true})
	theirs, err := other.MkdirTask(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{t.TempDir(), "relative/" + filepath.Base(theirs), theirs} {
		if _, err := s.Run(context.Background(), Spec{Path: "/bin/true", TaskDir: dir}); !errors.Is(err, ErrStart) {
			t.Errorf("Run with task directory %s: %v, want ErrStart", dir, err)
		}
	}
	mine, err := s.MkdirTask(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Run(context.Background(), Spec{Path: "/bin/true", TaskDir: mine}); err != nil {
		t.Errorf("Run with its own task directory: %v", err)
	}
}
