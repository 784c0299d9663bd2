package supervise

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkStartStop measures a supervised start+wait+cleanup of /bin/true against plain
// exec.Command, per layer combination. The "all" case also reports the task init's resident
// memory (init-RSS-KiB), read while a task sleeps.
//
//	go test -run '^$' -bench StartStop -benchtime 200x ./internal/supervise/
func BenchmarkStartStop(b *testing.B) {
	b.Run("plain-exec", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := exec.Command("/bin/true").Run(); err != nil {
				b.Fatal(err)
			}
		}
	})
	only := func(keep Layers) Layers {
		return Layers{ProcessGroup: !keep.ProcessGroup, Pdeathsig: !keep.Pdeathsig, Cgroup: !keep.Cgroup,
			PIDNamespace: !keep.PIDNamespace, Subreaper: !keep.Subreaper, Cookie: !keep.Cookie}
	}
	for _, c := range []struct {
		name    string
		disable Layers
	}{
		{"pgid", only(Layers{ProcessGroup: true})},
		{"pgid+pdeathsig", only(Layers{ProcessGroup: true, Pdeathsig: true})},
		{"pgid+pdeathsig+cgroup", only(Layers{ProcessGroup: true, Pdeathsig: true, Cgroup: true})},
		{"pgid+pdeathsig+pidns", only(Layers{ProcessGroup: true, Pdeathsig: true, PIDNamespace: true})},
		{"all", Layers{}},
	} {
		b.Run(c.name, func(b *testing.B) {
			s, err := New(Config{Name: "bench", Disable: c.disable})
			if err != nil {
				b.Fatal(err)
			}
			if err := s.Start(context.Background()); err != nil {
				b.Fatal(err)
			}
			defer stopSupervisor(b, s)
			want := only(c.disable)
			if got := s.Layers(); c.name != "all" && got != want {
				b.Skipf("layers %+v not all available here (want %+v)", got, want)
			}
			b.ReportAllocs()
			for b.Loop() {
				res, err := s.Run(context.Background(), Spec{Path: "/bin/true"})
				if err != nil || res.ExitCode != 0 {
					b.Fatal(res, err)
				}
			}
			b.StopTimer()
			if s.Layers().PIDNamespace {
				b.ReportMetric(float64(initRSS(b, s)), "init-RSS-KiB")
			}
		})
	}
}

// initRSS runs a sleeping task and reads VmRSS of its init.
func initRSS(b *testing.B, s *Supervisor) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := newReadyWriter("ready")
	pids := make(chan int, 1)
	done := make(chan struct{})
	fixture := fixtureBin(b)
	go func() {
		defer close(done)
		_, _ = s.Run(ctx, Spec{Path: fixture, Args: []string{"sleep"}, Stdout: out, Started: func(pid int) { pids <- pid }})
	}()
	pid := <-pids
	select {
	case <-out.ready:
	case <-time.After(10 * time.Second):
		b.Fatal("fixture not ready")
	}
	st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	cancel()
	<-done
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.SplitSeq(string(st), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	return 0
}

// BenchmarkSupervisorStart measures Start: layer probes, subreaper, start-up sweep.
func BenchmarkSupervisorStart(b *testing.B) {
	for b.Loop() {
		s, err := New(Config{Name: "benchstart"})
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		stopSupervisor(b, s)
	}
}
