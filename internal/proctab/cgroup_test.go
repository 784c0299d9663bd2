package proctab

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestCgroupMountDir(t *testing.T) {
	t.Parallel()
	tests := []struct {
		root, cg string
		want     string // "" = not shown
	}{
		{"/", "/", "/mnt"},
		{"/", "/a/b", "/mnt/a/b"},
		{"/a", "/a", "/mnt"},
		{"/a", "/a/b/c", "/mnt/b/c"},                  // a bind mount of /a: its root is not repeated
		{"/a", "/ab/c", ""},                           // a sibling that shares a prefix
		{"/a", "/", ""},                               // above the mount's root
		{"/a/b", "/a", ""},                            //
		{"/../..", "/", ""},                           // a mount that shows more than our cgroup namespace
		{"/", "/../x", ""},                            // a cgroup outside our namespace
		{"/", "a/b", ""},                              // not absolute
		{"/", "/a//b", ""},                            // not clean
		{"/", "/a/b (deleted)", "/mnt/a/b (deleted)"}, // a name, whatever its characters
	}
	for _, tt := range tests {
		m := CgroupMount{MountPoint: "/mnt", Root: tt.root}
		got, ok := m.Dir(tt.cg)
		if ok != (tt.want != "") || got != tt.want {
			t.Errorf("%+v.Dir(%q) = %q, %v; want %q", m, tt.cg, got, ok, tt.want)
		}
		if ok {
			if back, ok := m.Cgroup(got); !ok || back != tt.cg {
				t.Errorf("%+v.Cgroup(%q) = %q, %v; want %q", m, got, back, ok, tt.cg)
			}
		}
	}
}

func TestCgroupMountCgroup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		mnt, root, dir string
		want           string // "" = not under the mount
	}{
		{"/sys/fs/cgroup", "/", "/sys/fs/cgroup", "/"},
		{"/sys/fs/cgroup", "/", "/sys/fs/cgroup/a/b/", "/a/b"},
		{"/sys/fs/cgroup", "/a", "/sys/fs/cgroup/b", "/a/b"},
		{"/sys/fs/cgroup", "/", "/sys/fs/cgroupx/a", ""},
		{"/sys/fs/cgroup", "/", "/sys/fs", ""},
		{"/sys/fs/cgroup", "/..", "/sys/fs/cgroup/a", ""},
	}
	for _, tt := range tests {
		m := CgroupMount{MountPoint: tt.mnt, Root: tt.root}
		got, ok := m.Cgroup(tt.dir)
		if ok != (tt.want != "") || got != tt.want {
			t.Errorf("%+v.Cgroup(%q) = %q, %v; want %q", m, tt.dir, got, ok, tt.want)
		}
	}
}

// FuzzCgroupMountDir: a cgroup a mount shows maps to a directory under its mount point, and back.
func FuzzCgroupMountDir(f *testing.F) {
	f.Add("/sys/fs/cgroup", "/", "/a/b")
	f.Add("/mnt", "/a", "/a/b")
	f.Add("/mnt", "/a", "/ab")
	f.Add("/mnt", "/../..", "/")
	f.Fuzz(func(t *testing.T, mnt, root, cg string) {
		if !clean(mnt) {
			return
		}
		m := CgroupMount{MountPoint: mnt, Root: root}
		dir, ok := m.Dir(cg)
		if !ok {
			return
		}
		if _, under := below(mnt, dir); !under {
			t.Fatalf("%+v.Dir(%q) = %q, outside the mount point", m, cg, dir)
		}
		if back, ok := m.Cgroup(dir); !ok || back != cg {
			t.Fatalf("%+v.Cgroup(%q) = %q, %v; want %q back", m, dir, back, ok, cg)
		}
	})
}

// escapeMountinfo escapes a path as the kernel writes it in mountinfo (fs/proc_namespace.c,
// mangle: " \t\n\\").
func escapeMountinfo(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(" \t\n\\", s[i]) >= 0 {
			fmt.Fprintf(&b, `\%03o`, s[i])
		} else {
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

func FuzzUnescapeMountinfo(f *testing.F) {
	f.Add(`/mnt/with space`)
	f.Add(`/a\b`)
	f.Add(`\777\0`)
	f.Fuzz(func(t *testing.T, s string) {
		if got := unescapeMountinfo(escapeMountinfo(s)); got != s {
			t.Fatalf("unescape(escape(%q)) = %q", s, got)
		}
		_ = unescapeMountinfo(s) // any input: no panic
	})
}

func TestOwnCgroupDir(t *testing.T) {
	t.Parallel()
	cg, err := Cgroup(os.Getpid())
	if err != nil || cg == "" {
		t.Skipf("no cgroup v2 here (%q, %v)", cg, err)
	}
	dir, err := OwnCgroupDir()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		t.Fatalf("own cgroup dir %s: %v", dir, err)
	}
	if !slices.Contains(strings.Fields(string(b)), strconv.Itoa(os.Getpid())) {
		t.Errorf("%s/cgroup.procs does not list us (%d)", dir, os.Getpid())
	}
	back, err := CgroupOfDir(dir)
	if err != nil || back != cg {
		t.Errorf("CgroupOfDir(%s) = %q, %v; want %q", dir, back, err, cg)
	}
	if _, err := CgroupOfDir("/proc"); err == nil {
		t.Error("CgroupOfDir(/proc) succeeded: not a cgroup directory")
	}
}

// cgroupHelperEnv makes the test binary the helper of TestCgroupMountRootReal (see TestMain).
const cgroupHelperEnv = "PROCTAB_TEST_CGROUP_HELPER"

// cgroupView is what the helper sees from inside its namespaces.
type cgroupView struct {
	Mounts  []CgroupMount
	Cgroup  string // Cgroup(self)
	Own     string // OwnCgroupDir()
	OwnErr  string
	Inode   uint64 // of Own
	OfDir   string // CgroupOfDir(Own)
	MountAt string // where the helper mounted or bound a cgroup2
}

// runCgroupHelper runs in a private mount namespace (made by unshare(1)), born in the test's
// cgroup. mode "bind": bind-mount the cgroup dir args[0] on args[1], then detach every other
// cgroup2 mount, so only a mount whose root is not "/" is left. mode "ns" (also in a new cgroup
// namespace rooted at our cgroup): mount a fresh cgroup2 on args[1]. Then report what proctab
// sees, as JSON on stdout.
func runCgroupHelper(mode string, args []string) int {
	fail := func(err error) int { fmt.Fprintln(os.Stderr, "cgroup helper:", err); return 1 }
	if len(args) != 2 {
		return fail(fmt.Errorf("want 2 arguments, got %q", args))
	}
	switch mode {
	case "bind":
		before, err := CgroupMounts()
		if err != nil {
			return fail(err)
		}
		if err := syscall.Mount(args[0], args[1], "", syscall.MS_BIND, ""); err != nil {
			return fail(fmt.Errorf("bind %s: %w", args[0], err))
		}
		for _, m := range before {
			if err := syscall.Unmount(m.MountPoint, syscall.MNT_DETACH); err != nil {
				return fail(fmt.Errorf("detach %s: %w", m.MountPoint, err))
			}
		}
	case "ns":
		if err := syscall.Mount("none", args[1], "cgroup2", 0, ""); err != nil {
			return fail(fmt.Errorf("mount cgroup2: %w", err))
		}
	default:
		return fail(fmt.Errorf("unknown mode %q", mode))
	}
	v := cgroupView{MountAt: args[1]}
	var err error
	if v.Mounts, err = CgroupMounts(); err != nil {
		return fail(err)
	}
	if v.Cgroup, err = Cgroup(os.Getpid()); err != nil {
		return fail(err)
	}
	if v.Own, err = OwnCgroupDir(); err != nil {
		v.OwnErr = err.Error()
	} else {
		var st syscall.Stat_t
		if err := syscall.Stat(v.Own, &st); err != nil {
			return fail(fmt.Errorf("stat own cgroup dir %s: %w", v.Own, err))
		}
		v.Inode = st.Ino
		v.OfDir, _ = CgroupOfDir(v.Own)
	}
	if err := json.NewEncoder(os.Stdout).Encode(v); err != nil {
		return fail(err)
	}
	return 0
}

// TestCgroupMountRootReal checks the mount root with real mounts, as root, in throw-away mount
// (and cgroup) namespaces made by unshare(1): the helper is born in a fresh cgroup <own>/x/inner
// and must find that cgroup's directory (the same inode) through (a) a bind mount of <own>/x with
// every other cgroup2 mount detached, so the directory is <bind>/inner and not
// <bind>/<own>/x/inner; (b) a cgroup namespace rooted at its cgroup, where /proc/self/cgroup says
// "/", the machine's mount shows "/.." (not usable) and a cgroup2 mounted inside shows it.
func TestCgroupMountRootReal(t *testing.T) {
	unshare, err := exec.LookPath("unshare")
	if err != nil || os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI needs root and util-linux unshare (%v)", err)
		}
		t.Skip("needs root and unshare")
	}
	own, err := OwnCgroupDir()
	if err != nil {
		t.Skipf("no cgroup v2 here: %v", err)
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	parent := filepath.Join(own, "proctab-test-"+hex.EncodeToString(rnd[:]))
	inner := filepath.Join(parent, "inner")
	if err := os.MkdirAll(inner, 0o755); err != nil {
		t.Skipf("cgroup2 not writable here: %v", err)
	}
	t.Cleanup(func() { _ = os.Remove(inner); _ = os.Remove(parent) })
	innerName, err := CgroupOfDir(inner)
	if err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(inner, &st); err != nil {
		t.Fatal(err)
	}

	t.Run("bind mount", func(t *testing.T) {
		v := cgroupHelper(t, unshare, inner, "bind", parent)
		if len(v.Mounts) != 1 || v.Mounts[0].Root != strings.TrimSuffix(innerName, "/inner") {
			t.Errorf("mounts %+v, want only the bind mount with root %s", v.Mounts, strings.TrimSuffix(innerName, "/inner"))
		}
		if want := filepath.Join(v.MountAt, "inner"); v.Own != want || v.Inode != st.Ino {
			t.Errorf("OwnCgroupDir = %q (inode %d), %s; want %s (inode %d)", v.Own, v.Inode, v.OwnErr, want, st.Ino)
		}
		if v.Cgroup != innerName || v.OfDir != innerName {
			t.Errorf("Cgroup(self) %q, CgroupOfDir(own) %q; want %q", v.Cgroup, v.OfDir, innerName)
		}
	})
	t.Run("cgroup namespace", func(t *testing.T) {
		v := cgroupHelper(t, unshare, inner, "ns", "")
		if v.Cgroup != "/" {
			t.Errorf("Cgroup(self) = %q in its own cgroup namespace, want /", v.Cgroup)
		}
		if v.Own != v.MountAt || v.Inode != st.Ino || v.OfDir != "/" {
			t.Errorf("OwnCgroupDir = %q (inode %d, cgroup %q), %s; want %s (inode %d, cgroup /)", v.Own, v.Inode, v.OfDir, v.OwnErr, v.MountAt, st.Ino)
		}
		for _, m := range v.Mounts {
			if _, ok := m.Dir("/"); ok != (m.MountPoint == v.MountAt) {
				t.Errorf("mount %+v shows our cgroup: %v", m, ok)
			}
		}
	})
}

// cgroupHelper runs the test binary as runCgroupHelper in mode, born in the cgroup dir cgDir,
// under unshare(1) with a private mount namespace (and a cgroup namespace for "ns"), and returns
// what it saw. bind is the directory to bind-mount (mode "bind").
func cgroupHelper(t *testing.T, unshare, cgDir, mode, bind string) cgroupView {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	at := t.TempDir()
	args := []string{"--mount", "--propagation", "private"}
	if mode == "ns" {
		args = append(args, "--cgroup")
	}
	args = append(args, self, "-test.run=^$", bind, at)
	cmd := exec.Command(unshare, args...)
	cmd.Env = append(os.Environ(), cgroupHelperEnv+"="+mode)
	f, err := os.Open(cgDir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(f.Fd())}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("helper %s: %v\n%s", mode, err, errb.String())
	}
	var v cgroupView
	if err := json.Unmarshal(out.Bytes(), &v); err != nil {
		t.Fatalf("helper %s output %q: %v", mode, out.String(), err)
	}
	return v
}
