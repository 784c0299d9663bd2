package cli

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/internal/testkit"
)

// TestReadOnlyCommandsNeverCreate: status and export on a database that is not there exit 2 and
// create nothing; on one they may not read (as an ordinary user: root ignores file modes) exit 3
// naming the path and the cause; ui, which may write, does not create one either.
func TestReadOnlyCommandsNeverCreate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	typo := filepath.Join(dir, "typo.db")
	for _, args := range [][]string{
		{"status", "--database", typo},
		{"status", "--database", typo, "--json"},
		{"status", "--database", typo, "--wait", "1s"},
		{"export", "--database", typo},
		{"ui", "--database", typo, "--listen", "127.0.0.1:0"},
		{"status", "--database", dir},
	} {
		code, out, errOut := runMain(t, procOpts{}, args...)
		if code != ExitUsage || !strings.Contains(errOut, args[2]) || strings.Contains(out, "drained") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want %d naming the database", args, code, out, errOut, ExitUsage)
		}
	}
	if ents, err := os.ReadDir(dir); err != nil || len(ents) != 0 {
		t.Errorf("files created: %v %v", ents, err)
	}

	// Permissions, as uid 65534: a directory we may not enter, a file we may not read.
	world := worldDir(t)
	db := filepath.Join(world, "q.db")
	enqueueList(t, db, 2, 1)
	locked := filepath.Join(world, "locked")
	if err := os.Mkdir(locked, 0o755); err != nil {
		t.Fatal(err)
	}
	lockedDB := filepath.Join(locked, "q.db")
	enqueueList(t, lockedDB, 2, 1)
	if err := os.Chmod(locked, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(db, 0o600); err != nil { // root's, not nobody's
		t.Fatal(err)
	}
	for _, tt := range []struct {
		db, says string
	}{
		{lockedDB, "permission denied"},
		{db, "permission denied"},
	} {
		for _, cmd := range []string{"status", "export"} {
			code, _, errOut := runMain(t, procOpts{nobody: true}, cmd, "--database", tt.db)
			if code != ExitError || !strings.Contains(errOut, tt.db) || !strings.Contains(errOut, tt.says) {
				t.Errorf("%s on %s as nobody: exit %d, stderr %q; want %d naming the path and %q", cmd, tt.db, code, errOut, ExitError, tt.says)
			}
			if strings.Contains(errOut, "unable to open database file") {
				t.Errorf("%s: SQLite's bare message: %s", cmd, errOut)
			}
		}
	}
}

// TestStatusJSONLists: a fresh queue's status --json has "workers": [] and "failed": [], never
// null; and status opens the database read-only: it works, as another user, on a file that user
// may not write (in a directory where SQLite may make its -shm file), and where it may not even
// make that file, it says so.
func TestStatusJSONLists(t *testing.T) {
	t.Parallel()
	world := worldDir(t)
	shared := filepath.Join(world, "shared")
	if err := os.Mkdir(shared, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o1777); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{shared, world} {
		db := filepath.Join(dir, "q.db")
		enqueueList(t, db, 3, 2)
		if err := os.Chmod(db, 0o644); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := runMain(t, procOpts{nobody: true}, "status", "--database", db, "--json")
		if dir == world {
			if code != ExitError || !strings.Contains(errOut, db+"-shm") || !strings.Contains(errOut, "permission denied") {
				t.Errorf("status as nobody, directory not writable: exit %d, stderr %q", code, errOut)
			}
			continue
		}
		if code != 0 {
			t.Fatalf("status as nobody on a read-only file: exit %d\n%s", code, errOut)
		}
		var raw map[string]json.RawMessage
		if err := json.Unmarshal([]byte(out), &raw); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		for _, k := range []string{"workers", "failed", "supervision_here"} {
			if string(raw[k]) == "null" || !strings.HasPrefix(string(raw[k]), "[") {
				t.Errorf("%q: %s, want a list", k, raw[k])
			}
		}
	}
}

// TestStatusWaitFailsOnFailedJob: status --wait exits 1, naming the job, when a job that was
// waiting when it began ends cancelled (a worker refuses its arguments) instead of completing;
// the queue drains, but "drained" alone would hide the lost work.
func TestStatusWaitFailsOnFailedJob(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "q.db")
	st, err := queue.Open(ctx, queue.Config{Database: db})
	if err != nil {
		t.Fatal(err)
	}
	// A job no enqueue would make (a foreign one): its proxy cannot be parsed.
	ids, err := st.EnqueueChecks(ctx, []queue.Chunk{{Proxies: []string{"not a proxy"}, Source: "foreign#1"}}, queue.CheckOptions{Judge: "http://127.0.0.2:1/"})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	status := startMain(t, procOpts{}, "status", "--database", db, "--wait", "2m")
	testkit.WaitFor(t, time.Minute, "status --wait to begin", func() bool {
		return strings.Contains(status.stderr.String(), "waiting for the queue to drain")
	})
	w := startMain(t, procOpts{}, "worker", "--database", db)
	code := status.wait(t, 2*time.Minute)
	w.signal(t, 15)
	if wc := w.wait(t, time.Minute); wc != 0 {
		t.Errorf("worker exit %d", wc)
	}
	out, errOut := status.stdout.String(), status.stderr.String()
	if code != ExitFailure {
		t.Errorf("status --wait exit %d, want %d", code, ExitFailure)
	}
	for _, want := range []string{"queue drained, but 0 jobs discarded and 1 cancelled", "ids " + itoa(ids[0])} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr does not say %q:\n%s", want, errOut)
		}
	}
	for _, want := range []string{"cancelled=1", "failed    0 discarded, 1 cancelled", "job " + itoa(ids[0]) + " check cancelled", "foreign#1", "bad proxies"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout does not say %q:\n%s", want, out)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestListErrors: a proxy list that does not exist or is a directory is bad input (exit 2); one
// the user may not read is a permission problem (exit 3), for check and enqueue alike.
func TestListErrors(t *testing.T) {
	t.Parallel()
	world := worldDir(t)
	secret := writeTestFile(t, world, "secret.txt", "http://127.0.0.3:1\n", 0o600)
	db := filepath.Join(world, "q.db")
	for _, tt := range []struct {
		list   string
		nobody bool
		code   int
		says   string
	}{
		{filepath.Join(world, "missing.txt"), false, ExitUsage, "does not exist"},
		{world, false, ExitUsage, "is a directory"},
		{secret, true, ExitError, "permission denied"},
	} {
		for _, args := range [][]string{
			{"check", "--judge", "http://127.0.0.2:1/", "-f", tt.list},
			{"enqueue", "--database", db, "--judge", "http://127.0.0.2:1/", tt.list},
		} {
			code, _, errOut := runMain(t, procOpts{nobody: tt.nobody}, args...)
			if code != tt.code || !strings.Contains(errOut, tt.list) || !strings.Contains(errOut, tt.says) {
				t.Errorf("%s %s (nobody %v): exit %d, stderr %q; want %d saying %q", args[0], tt.list, tt.nobody, code, errOut, tt.code, tt.says)
			}
		}
	}
	if _, err := os.Stat(db); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a failed enqueue created the database: %v", err)
	}
}

// TestStatusProbesLayersOnlyWhenAsked: status reads the database alone unless --layers asks it to
// probe the supervision layers a worker started here would get (supervise.Detect starts two probe
// processes: most of a status's time on a big pool). The probe is seen by its result: the process
// group layer is always there when probed.
func TestStatusProbesLayersOnlyWhenAsked(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "q.db")
	enqueueList(t, db, 2, 1)
	for _, probe := range []bool{false, true} {
		args := []string{"status", "--database", db}
		if probe {
			args = append(args, "--layers")
		}
		code, out, errOut := runMain(t, procOpts{}, append(args, "--json")...)
		var s queue.Status
		if err := json.Unmarshal([]byte(out), &s); code != 0 || err != nil {
			t.Fatalf("%v --json: exit %d, %v\n%s\n%s", args, code, err, out, errOut)
		}
		probed := strings.Contains(strings.Join(s.SupervisionHere, ","), "process_group")
		if s.LayersProbed != probe || probed != probe {
			t.Errorf("%v --json: layers_probed %v, supervision_here %v; want probed %v", args, s.LayersProbed, s.SupervisionHere, probe)
		}
		code, out, errOut = runMain(t, procOpts{}, args...)
		if line := "supervision layers here: process_group"; code != 0 || strings.Contains(out, line) != probe ||
			strings.Contains(out, "not probed (status --layers)") == probe {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want %q only when probed", args, code, out, errOut, line)
		}
	}
}
