package testkit

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
)

// BuildOption changes how BuildBinary builds a program.
type BuildOption func(*buildKey)

// NoRace builds the program without -race even when the tests run with it: for a system under
// test whose speed matters more than its own races (killtest's built-in suite, a fake checker).
func NoRace() BuildOption { return func(k *buildKey) { k.race = false } }

// buildKey names one build: the same package with other flags is another binary.
type buildKey struct {
	pkg  string
	race bool
}

// build is one program built (or being built) by BuildBinary.
type build struct {
	once sync.Once
	path string
	err  error
}

// binaries is the build cache of this test binary. It is package state on purpose, the one
// exception to the project's rule: "one build per test binary run" is a property of the process,
// shared by every test of the package, parallel ones included. Main creates its directory and
// removes it after the run; everything else is guarded by mu.
var binaries struct {
	mu     sync.Mutex
	dir    string              // guarded by mu; set by Main, "" outside it
	builds map[buildKey]*build // guarded by mu
}

// BuildBinary builds the main package pkg of this module once per test binary run and returns
// the path of the program. pkg is an import path ("github.com/proxyline/proxyline/cmd/proxyline")
// or a directory relative to the module root ("./cmd/proxyline"). The program is built with -race
// when the tests are (unless NoRace), into a temporary directory that Main removes after the
// tests. Parallel tests asking for the same program wait for one build; a failed build fails every
// test that asks for it, with the compiler's output. It needs Main in the package's TestMain.
func BuildBinary(t testing.TB, pkg string, opts ...BuildOption) string {
	t.Helper()
	key := buildKey{pkg: pkg, race: raceEnabled}
	for _, o := range opts {
		o(&key)
	}
	b, dir, n := lookupBuild(key)
	if dir == "" {
		t.Fatalf("testkit.BuildBinary(%s): the package's TestMain must call testkit.Main", pkg)
	}
	b.once.Do(func() { b.path, b.err = goBuild(filepath.Join(dir, strconv.Itoa(n)), key) })
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// Program is one program of BuildDir: a main package of this module and its build options.
type Program struct {
	Pkg  string
	Opts []BuildOption
}

// BuildDir builds programs with BuildBinary and returns a directory holding them all (hard links
// named after each program: a process started from the directory has its path there, in
// /proc/<pid>/exe too, as if it had been built there), for a tool that takes a directory of programs (killtest
// --bin) or a PATH entry. The directory is made once per test binary run for each name; every
// call with one name must give the same programs. It is readable by every user (mode 0755), like
// the programs, so that a test may run them as another user.
func BuildDir(t testing.TB, name string, progs ...Program) string {
	t.Helper()
	paths := make([]string, len(progs))
	for i, p := range progs {
		paths[i] = BuildBinary(t, p.Pkg, p.Opts...)
	}
	b, dir, _ := lookupBuild(buildKey{pkg: "dir:" + name})
	b.once.Do(func() { b.path, b.err = linkDir(filepath.Join(dir, "dirs", name), paths) })
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// linkDir makes dir with a hard link to each of paths, named as its target.
func linkDir(dir string, paths []string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("testkit: %w", err)
	}
	for _, p := range paths {
		if err := os.Link(p, filepath.Join(dir, filepath.Base(p))); err != nil {
			return "", fmt.Errorf("testkit: %w", err)
		}
	}
	return dir, nil
}

// lookupBuild returns the cache entry of key (creating it), the cache directory and a number
// unique to the entry, for its own subdirectory.
func lookupBuild(key buildKey) (*build, string, int) {
	binaries.mu.Lock()
	defer binaries.mu.Unlock()
	if binaries.builds == nil {
		binaries.builds = make(map[buildKey]*build)
	}
	b, ok := binaries.builds[key]
	if !ok {
		b = &build{}
		binaries.builds[key] = b
	}
	return b, binaries.dir, len(binaries.builds)
}

// goBuild runs "go build" for key from the module root and returns the program's path in dir.
func goBuild(dir string, key buildKey) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("build %s: %w", key.pkg, err)
	}
	out := filepath.Join(dir, path.Base(key.pkg))
	args := []string{"build", "-o", out}
	if key.race {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, key.pkg)...)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go %v (in %s): %w\n%s", cmd.Args[1:], root, err, b)
	}
	return out, nil
}

// moduleRoot is the directory of go.mod: two levels above this file.
func moduleRoot() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("testkit: cannot locate its own source file to find the module root")
	}
	root := filepath.Join(filepath.Dir(file), "..", "..")
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return "", fmt.Errorf("testkit: module root: %w", err)
	}
	return root, nil
}

// startBuilds creates the cache directory; it is Main's.
func startBuilds() error {
	dir, err := os.MkdirTemp("", "testkit-bin-")
	if err == nil {
		// Programs are not secrets, and a test may run them as an unprivileged user.
		err = os.Chmod(dir, 0o755)
	}
	if err != nil {
		return fmt.Errorf("testkit: build directory: %w", err)
	}
	binaries.mu.Lock()
	binaries.dir = dir
	binaries.mu.Unlock()
	return nil
}

// endBuilds removes the cache directory and every program in it; it is Main's.
func endBuilds() {
	binaries.mu.Lock()
	dir := binaries.dir
	binaries.dir, binaries.builds = "", nil
	binaries.mu.Unlock()
	if dir != "" {
		_ = os.RemoveAll(dir)
	}
}
