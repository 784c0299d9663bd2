package detect_test

import (
	"context"
	"fmt"
	"os/exec"
	"time"

	"github.com/proxyline/proxyline/internal/killtest/detect"
	"github.com/proxyline/proxyline/internal/killtest/observe"
)

// The order a runner follows: observer first, components with the cookie and Own, marks at the
// same point of every cycle, detectors after the stop, observer last.
func Example() {
	ctx := context.Background()
	const cookie = "KILLTEST_RUN=example"
	o, err := observe.New(observe.Config{Cookie: cookie})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := o.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	defer func() {
		if err := o.Stop(ctx); err != nil { // the observer cuts at once: ctx needs no deadline
			fmt.Println(err)
		}
	}()

	cmd := exec.Command("sh", "-c", "sleep 1 & wait")
	cmd.Env = append(cmd.Environ(), cookie)
	if err := cmd.Start(); err != nil {
		fmt.Println(err)
		return
	}
	o.Own(cmd.Process.Pid)
	for i := 1; i <= 5; i++ {
		o.Mark(fmt.Sprintf("cycle-%d", i))
	}
	_ = cmd.Wait()

	for _, r := range []detect.Result{
		detect.Orphans(ctx, o, detect.OrphanOptions{Grace: 2 * time.Second}),
		detect.Zombies(o, detect.ZombieOptions{}),
		detect.Stopped(ctx, o, detect.StoppedOptions{}),
		detect.FDGrowth(o, detect.FDOptions{}),
		detect.MemoryGrowth(o, detect.MemoryOptions{}),
		detect.Ports(o, detect.PortOptions{}),
	} {
		fmt.Println(r.Check, r.Verdict, r.Summary)
	}
}
