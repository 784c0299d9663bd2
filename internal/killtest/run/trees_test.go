package run

import (
	"syscall"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/killtest/observe"
)

// TestFateStraddlingSample: on a busy machine the sample that sees a fault's effect may have
// begun before the signal went out, so the death and re-parenting it records carry a time
// before the firing. They still happened after the tree was taken (the tree's processes were
// alive, with their parents, in an earlier sample): the parent ended, the child was orphaned.
// The child, sampled between fork and exec with its parent's argv, is named by its command
// after the exec. The old rule (after the firing time) said neither, and named the child sh.
func TestFateStraddlingSample(t *testing.T) {
	t0 := time.Now()
	const harness = 99
	argv := []string{"sh", "-c", "sleep 600 & wait"}
	parent := observe.Process{Key: observe.Key{PID: 10, StartTime: 100}, PPID: harness, Comm: "sh", Cmdline: argv, State: 'S', LastSeen: t0}
	child := observe.Process{Key: observe.Key{PID: 11, StartTime: 101}, PPID: 10, Comm: "sh", Cmdline: argv, State: 'R', LastSeen: t0}
	tr := faultTree{at: t0.Add(50 * time.Millisecond), taken: t0, signal: syscall.SIGKILL,
		procs: []observe.Process{parent, child}, targets: map[observe.Key]bool{parent.Key: true}}
	lastParent, lastChild := parent, child
	seen := t0.Add(20 * time.Millisecond) // the sample began after taken, before the firing
	lastParent.Exited, lastParent.DiedAt = true, seen
	lastChild.PPID, lastChild.Comm, lastChild.Cmdline = harness, "sleep", []string{"sleep", "600"}
	lastChild.Reparented, lastChild.ReparentedAt = true, seen
	byKey := map[observe.Key]observe.Process{parent.Key: lastParent, child.Key: lastChild}

	if got := fateOf(parent, byKey, tr, time.Time{}, harness); !got.Target || !got.Ended || got.Orphaned {
		t.Errorf("parent %+v: want signalled, ended, not orphaned", got)
	}
	got := fateOf(child, byKey, tr, time.Time{}, harness)
	if !got.Orphaned || got.NewPPID != 0 || got.Ended || got.Command != "sleep 600" {
		t.Errorf("child %+v: want %q orphaned to the harness, alive", got, "sleep 600")
	}
	// Never sampled re-parented (it ended first), but seen alive 500 ms after its parent was
	// gone: orphaned all the same.
	unseen := child
	unseen.Exited, unseen.DiedAt, unseen.AliveAt = true, t0.Add(time.Second), t0.Add(520*time.Millisecond)
	unseen.Orphaned = &observe.Orphaning{Parent: parent.Key, ParentAliveAt: t0, ParentDeadBy: seen}
	byKey[child.Key] = unseen
	if got := fateOf(child, byKey, tr, time.Time{}, harness); !got.Orphaned || !got.Ended {
		t.Errorf("child orphaned between samples: %+v, want orphaned and ended", got)
	}
	unseen.AliveAt = seen.Add(100 * time.Millisecond) // within a parent-death signal's delivery
	byKey[child.Key] = unseen
	if got := fateOf(child, byKey, tr, time.Time{}, harness); got.Orphaned {
		t.Errorf("child that died with its parent: %+v, want not orphaned", got)
	}
	// Re-parented before the tree was taken: not this firing's doing.
	lastChild.ReparentedAt = t0.Add(-time.Millisecond)
	byKey[child.Key] = lastChild
	if got := fateOf(child, byKey, tr, time.Time{}, harness); got.Orphaned {
		t.Errorf("child re-parented before the tree: %+v, want not orphaned by the fault", got)
	}
}
