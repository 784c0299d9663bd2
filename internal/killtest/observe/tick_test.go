package observe

import (
	"fmt"
	"os"
	"testing"
)

// TestUIDsOf: the evidence names all four user ids of a live process (ours: real, effective,
// saved and file system are those we run with), and says "uid unknown" for one that is gone.
func TestUIDsOf(t *testing.T) {
	t.Parallel()
	uid, euid := os.Getuid(), os.Geteuid()
	if want, got := fmt.Sprintf("uids %d/%d/%d/%d", uid, euid, euid, euid), uidsOf(os.Getpid()); got != want {
		t.Errorf("uidsOf(self) = %q, want %q", got, want)
	}
	if got := uidsOf(1 << 30); got != "uid unknown" {
		t.Errorf("uidsOf(no process) = %q, want %q", got, "uid unknown")
	}
}
