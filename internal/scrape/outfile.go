package scrape

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/proxyline/proxyline/internal/proctab"
)

// atomicFile is an output file that appears at its path complete or not at all. Where the file
// system supports it (ext4, xfs, btrfs, tmpfs) the data goes into an unnamed O_TMPFILE inode in
// the target directory: if the process is killed, even by SIGKILL, the kernel frees it and
// nothing is left. Commit links it under a temporary name (linkat with AT_EMPTY_PATH, allowed
// to the file's opener since Linux 6.10; before, to root only, and others copy the finished data
// into a named temporary file) and renames that over the path. Elsewhere
// it is a named temporary file ".NAME.tmp.PID.*" in the same directory, which sweepTemps of a
// later run removes once its process is gone.
type atomicFile struct {
	*os.File
	path     string
	tmpName  string // the named temporary file; "" for O_TMPFILE
	unsafe   bool   // writes straight into path (the known-bad mode)
	finished bool
}

// createAtomic opens an atomicFile for path, mode 0600 (outputs may hold proxy credentials).
// With unsafe it opens path itself, truncated: a kill leaves a partial file (known-bad fixtures
// use it to show that the check catches that).
func createAtomic(path string, unsafe bool) (*atomicFile, error) {
	if unsafe {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return nil, err
		}
		return &atomicFile{File: f, path: path, unsafe: true}, nil
	}
	dir := filepath.Dir(path)
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err == nil {
		return &atomicFile{File: os.NewFile(uintptr(fd), path), path: path}, nil
	}
	f, err := os.CreateTemp(dir, tempPrefix(filepath.Base(path))+"*")
	if err != nil {
		return nil, err
	}
	return &atomicFile{File: f, path: path, tmpName: f.Name()}, nil
}

// tempPrefix is the prefix of the named temporary files of base written by this process.
func tempPrefix(base string) string {
	return "." + base + ".tmp." + strconv.Itoa(os.Getpid()) + "."
}

// Commit makes the file appear at its path, complete (synced first).
func (a *atomicFile) Commit() error {
	if a.finished {
		return errors.New("commit: already finished")
	}
	a.finished = true
	if err := a.Sync(); err != nil {
		_ = a.Close()
		a.removeTemp()
		return fmt.Errorf("sync %s: %w", a.path, err)
	}
	if a.unsafe {
		return a.Close()
	}
	name := a.tmpName
	if name == "" {
		name = filepath.Join(filepath.Dir(a.path), tempPrefix(filepath.Base(a.path))+"link")
		_ = os.Remove(name)
		if err := unix.Linkat(int(a.Fd()), "", unix.AT_FDCWD, name, unix.AT_EMPTY_PATH); err != nil {
			// Before Linux 6.10 only a privileged process may link by descriptor: copy the
			// finished data into a named temporary file instead (the kill-safe part is over).
			copied, cerr := a.copyToTemp()
			if cerr != nil {
				_ = a.Close()
				return fmt.Errorf("link %s: %w; copy: %w", a.path, err, cerr)
			}
			name = copied
		}
	}
	if err := a.Close(); err != nil {
		_ = os.Remove(name)
		return fmt.Errorf("close %s: %w", a.path, err)
	}
	if err := os.Rename(name, a.path); err != nil {
		_ = os.Remove(name)
		return fmt.Errorf("rename into %s: %w", a.path, err)
	}
	return nil
}

// copyToTemp copies the unnamed file's data into a named temporary file beside the path and
// returns its name.
func (a *atomicFile) copyToTemp() (string, error) {
	if _, err := a.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	f, err := os.CreateTemp(filepath.Dir(a.path), tempPrefix(filepath.Base(a.path))+"*")
	if err != nil {
		return "", err
	}
	_, err = io.Copy(f, a.File)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// Abort drops the file: nothing appears at its path (unless unsafe).
func (a *atomicFile) Abort() {
	if a.finished {
		return
	}
	a.finished = true
	_ = a.Close()
	a.removeTemp()
}

func (a *atomicFile) removeTemp() {
	if a.tmpName != "" {
		_ = os.Remove(a.tmpName)
	}
}

// sweepTemps removes the named temporary files a killed earlier run left in dir: files
// ".NAME.tmp.PID.*" whose process is gone. A live PID is left alone (it may be another run
// writing there now).
func sweepTemps(dir string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var removed []string
	for _, e := range ents {
		n := e.Name()
		i := strings.Index(n, ".tmp.")
		if !strings.HasPrefix(n, ".") || i < 0 || e.IsDir() {
			continue
		}
		pidText, _, ok := strings.Cut(n[i+len(".tmp."):], ".")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if _, err := proctab.Stat(pid); err == nil {
			continue
		}
		if os.Remove(filepath.Join(dir, n)) == nil {
			removed = append(removed, n)
		}
	}
	return removed
}
