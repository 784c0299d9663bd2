package supervise

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestInitOutsideNamespaceSignalsOnlyItsTask guards the init's one dangerous operation:
// kill(-1). As PID 1 of a task namespace it reaches just that namespace; anywhere else it
// would reach every process the user may signal. The init is run here as PID 2+ of a
// throw-away namespace (made by unshare, so a regression stays inside it) next to a decoy;
// a SIGTERM to the init must end its command and spare the decoy.
func TestInitOutsideNamespaceSignalsOnlyItsTask(t *testing.T) {
	unshare, err := exec.LookPath("unshare")
	if err != nil || os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI needs root and util-linux unshare: %v", err)
		}
		t.Skip("needs root and unshare")
	}
	dir := t.TempDir()
	script := `
mkfifo "$DIR/ready"
sleep 300 & D=$!
` + initEnv + `=run "$BIN" "$FIX" sleep > "$DIR/ready" & I=$!
read line < "$DIR/ready"
kill -TERM $I
wait $I; echo "init-exit $?"
if kill -0 $D 2>/dev/null; then echo decoy-alive; kill $D; else echo decoy-dead; fi
`
	cmd := exec.Command(unshare, "--pid", "--fork", "--kill-child", "/bin/sh", "-c", script)
	cmd.Env = append(os.Environ(), "DIR="+dir, "BIN="+os.Args[0], "FIX="+fixtureBin(t), noRaceSleep)
	cmd.WaitDelay = 5 * time.Second
	done := make(chan struct{})
	var out []byte
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill() // --kill-child takes the namespace with it
		<-done
		t.Fatalf("timed out: %q", out)
	}
	if err != nil {
		t.Fatalf("%v: %q", err, out)
	}
	got := string(out)
	if !strings.Contains(got, "init-exit 143") || !strings.Contains(got, "decoy-alive") {
		t.Errorf("output %q: want the init to exit 128+SIGTERM and the decoy alive", got)
	}
}
