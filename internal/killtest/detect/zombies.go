package detect

import (
	"fmt"
	"time"

	"github.com/proxyline/proxyline/internal/killtest/observe"
)

// ZombieOptions configures Zombies.
type ZombieOptions struct {
	// MinAge is how long a process must stay a zombie, observed continuously, to count.
	// Default 1s.
	MinAge time.Duration
}

// Zombies is the zombie detector: it fails for every attributed process that stayed in state Z
// for MinAge or longer while its parent was a process of the system under test. The culprit is
// the parent, which did not reap it: each zombie gives two pieces of evidence, the zombie
// (Class "zombie") and its parent (Class "culprit-parent"). Zombie children of the harness are
// not counted: the observer reaps the orphans it inherits, and those are the Orphans detector's.
func Zombies(o *observe.Observer, opts ZombieOptions) Result {
	return judgeZombies(o.Zombies(), opts)
}

func judgeZombies(zs []observe.Zombie, opts ZombieOptions) Result {
	const check = "zombies"
	minAge := opts.MinAge
	if minAge <= 0 {
		minAge = time.Second
	}
	res := Result{Check: check}
	culprits := map[observe.Key]bool{}
	for _, z := range zs {
		if z.ParentIsHarness {
			continue
		}
		d := z.Until.Sub(z.Since)
		if d < minAge {
			continue
		}
		res.Evidence = append(res.Evidence, Evidence{
			PID: z.PID, StartTime: z.StartTime, Cmdline: cmdline(z.Cmdline, z.Comm), State: "Z",
			Age: d.Round(time.Millisecond), Class: "zombie",
			Detail: fmt.Sprintf("not reaped for %s by its parent pid %d (%s)%s", hd(d),
				z.Parent.PID, cmdline(z.ParentCmdline, "?"), reapedNote(z)),
		})
		if !culprits[z.Parent] {
			culprits[z.Parent] = true
			res.Evidence = append(res.Evidence, Evidence{
				PID: z.Parent.PID, StartTime: z.Parent.StartTime, Cmdline: cmdline(z.ParentCmdline, "?"),
				Class: "culprit-parent", Detail: "did not wait for its exited child",
			})
		}
	}
	if len(res.Evidence) == 0 {
		return pass(check, fmt.Sprintf("no zombie lasted %s or longer (%d brief ones)", hd(minAge), len(zs)))
	}
	res.Verdict = Fail
	res.Summary = fmt.Sprintf("%d zombie(s) left unreaped for %s or longer by %d parent(s)",
		len(res.Evidence)-len(culprits), hd(minAge), len(culprits))
	return res
}

func reapedNote(z observe.Zombie) string {
	if z.Reaped {
		return "; reaped later"
	}
	return "; still a zombie"
}
