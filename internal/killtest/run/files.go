package run

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/proxyline/proxyline/internal/killtest/human"
	"github.com/proxyline/proxyline/internal/killtest/report"
	"github.com/proxyline/proxyline/internal/killtest/scenario"
)

// maxTreeEntries bounds a watched directory tree: beyond it the files check cannot judge (a
// directory that large is not the system's scratch space).
const maxTreeEntries = 100_000

// fileEntry is what the files check knows of one path.
type fileEntry struct {
	ino  uint64
	mode fs.FileMode
	size int64
}

// fileTree is one directory tree, recorded: every path below root (root itself included, as
// ".") with its inode, mode and size. Symbolic links are recorded, not followed.
type fileTree struct {
	root    string
	exists  bool
	entries map[string]fileEntry // by path relative to root
	err     error
}

// scanTree records the tree under root. A missing root is an empty tree (it may be made by the
// system during the run).
func scanTree(root string) fileTree {
	t := fileTree{root: root, entries: map[string]fileEntry{}}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == root && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while we looked
			}
			return err
		}
		fi, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		rel, _ := filepath.Rel(root, p)
		e := fileEntry{mode: fi.Mode(), size: fi.Size()}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			e.ino = st.Ino
		}
		t.entries[rel] = e
		t.exists = true
		if len(t.entries) > maxTreeEntries {
			return fmt.Errorf("more than %d entries", maxTreeEntries)
		}
		return nil
	})
	if err != nil {
		t.err = fmt.Errorf("read %s: %w", root, err)
	}
	return t
}

// filesWatch is the state of the files check: the trees recorded before the components start,
// and what may stay.
type filesWatch struct {
	before []fileTree
	ignore []string        // the scenario's globs
	named  map[string]bool // absolute paths the scenario names as its outputs (always ignored)
}

// filesDirs are the directories the files check watches: the scenario's (relative ones under
// ${TMP}), or ${TMP}.
func (r *runner) filesDirs(fc *scenario.FilesCheck) []string {
	if len(fc.Dirs) == 0 {
		return []string{r.tmp}
	}
	out := make([]string, len(fc.Dirs))
	for i, d := range fc.Dirs {
		if !filepath.IsAbs(d) {
			d = filepath.Join(r.tmp, d)
		}
		out[i] = filepath.Clean(d)
	}
	return out
}

// filesBefore records the watched trees; called after setup, before the components start.
func (r *runner) filesBefore() {
	fc := r.sc.Expect.Files
	if fc == nil || !fc.Enabled {
		return
	}
	w := &filesWatch{ignore: fc.Ignore, named: r.namedOutputs()}
	for _, d := range r.filesDirs(fc) {
		w.before = append(w.before, scanTree(d))
	}
	r.live.files = w
}

// namedOutputs are the files the scenario names as the system's outputs or killtest's own:
// history sources and checksums, SQLite probe files (with their journals), ready files, and
// killtest's logs. A named directory covers everything below it.
func (r *runner) namedOutputs() map[string]bool {
	named := map[string]bool{filepath.Join(r.tmp, "logs"): true}
	add := func(p string) {
		if p == "" {
			return
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(r.tmp, p)
		}
		named[filepath.Clean(p)] = true
	}
	sqlite := func(q *scenario.SQLProbe) {
		if q != nil && q.Driver == "sqlite" {
			for _, suf := range []string{"", "-wal", "-shm", "-journal"} {
				add(q.DSN + suf)
			}
		}
	}
	for _, c := range r.sc.Components {
		add(c.Ready.File)
	}
	for _, p := range r.sc.Probes {
		sqlite(p.SQL)
	}
	if h := r.sc.Expect.History; h != nil {
		for _, s := range []scenario.Source{h.Submitted, h.Results} {
			add(s.File)
			add(s.JSONL)
			sqlite(s.SQL)
		}
		add(h.Checksums)
	}
	return named
}

// ignored reports whether rel (a path under root) may stay: a scenario glob matches it or one of
// its parent directories, or the scenario names it (or a parent) as an output.
func (w *filesWatch) ignored(root, rel string) bool {
	for p := filepath.Join(root, rel); ; p = filepath.Dir(p) {
		if w.named[p] {
			return true
		}
		if p == "/" || p == "." {
			break
		}
	}
	parts := strings.Split(filepath.ToSlash(rel), "/")
	for i := range parts {
		prefix := path.Join(parts[:i+1]...)
		for _, g := range w.ignore {
			g = strings.TrimSuffix(g, "/")
			if strings.Contains(g, "/") {
				if ok, _ := path.Match(g, prefix); ok {
					return true
				}
			} else if ok, _ := path.Match(g, parts[i]); ok {
				return true
			}
		}
	}
	return false
}

// leftover is one new path still there after the stop, with what it holds when a directory.
type leftover struct {
	path    string
	entry   fileEntry
	files   int   // entries below it (directories), not ignored
	bytes   int64 // sizes below it
	outputs int   // ignored entries below it (directories)
}

// filesCheck compares the watched trees with the ones recorded before the components started:
// every file or directory that is new (or was replaced: another inode) and not ignored is a
// leftover. A new directory is reported once, with what it holds.
func (r *runner) filesCheck() *report.Check {
	w := r.live.files
	if w == nil {
		return nil
	}
	c := &report.Check{Name: "files", Verdict: report.Pass}
	var found []leftover
	var roots, never []string
	allowed := 0
	for _, b := range w.before {
		roots = append(roots, b.root)
		if b.err != nil {
			c.Verdict, c.Summary = report.Unknown, "could not record the directory before the run: "+b.err.Error()
			return c
		}
		after := scanTree(b.root)
		if after.err != nil {
			c.Verdict, c.Summary = report.Unknown, "could not read the directory after the stop: "+after.err.Error()
			return c
		}
		if !b.exists && !after.exists {
			never = append(never, b.root)
			continue
		}
		f, n := w.compare(b, after)
		found = append(found, f...)
		allowed += n
	}
	where := strings.Join(roots, ", ")
	if len(found) == 0 && len(never) > 0 {
		// A watched directory that existed neither before the run nor after the stop was never
		// looked at: a typo in expect.files.dirs would otherwise pass silently.
		c.Verdict = report.Unknown
		c.Summary = fmt.Sprintf("nothing to compare in %s: it existed neither before the run nor after the stop (a typo in expect.files.dirs? create a directory the system only makes now and then in a setup step)",
			strings.Join(never, ", "))
		return c
	}
	if len(found) == 0 {
		c.Summary = fmt.Sprintf("nothing created during the run is left in %s", where)
		if allowed > 0 {
			c.Summary += fmt.Sprintf(" (%d path(s) the scenario names as outputs or ignores)", allowed)
		}
		return c
	}
	c.Verdict = report.Fail
	c.Summary = fmt.Sprintf("%d path(s) created during the run are still there after the stop, in %s", len(found), where)
	for i, l := range found {
		if i == 200 {
			c.Details = append(c.Details, fmt.Sprintf("… %d more", len(found)-i))
			break
		}
		c.Details = append(c.Details, l.describe())
	}
	return c
}

// compare returns the new, not ignored, top-most paths of after, and how many new paths were
// ignored.
func (w *filesWatch) compare(before, after fileTree) ([]leftover, int) {
	var paths []string
	for p, e := range after.entries {
		if b, ok := before.entries[p]; ok && b.ino == e.ino && b.mode.Type() == e.mode.Type() {
			continue
		}
		paths = append(paths, p)
	}
	sort.Strings(paths) // parents before their children
	var out []leftover
	top := map[string]int{} // a reported directory → its index in out
	ignored := 0
	for _, p := range paths {
		if w.ignored(after.root, p) {
			ignored++
			if i, ok := top[ancestorIn(top, p)]; ok {
				out[i].outputs++
			}
			continue
		}
		e := after.entries[p]
		if i, ok := top[ancestorIn(top, p)]; ok && p != "." {
			out[i].files++
			out[i].bytes += e.size
			continue
		}
		out = append(out, leftover{path: filepath.Join(after.root, p), entry: e})
		if e.mode.IsDir() {
			top[p] = len(out) - 1
		}
	}
	return withoutOutputDirs(out), ignored
}

// withoutOutputDirs drops the new directories that hold nothing but ignored paths: the
// containers of the outputs (an --out-dir whose files are all named), not leftovers. A new
// directory that is empty is still one.
func withoutOutputDirs(out []leftover) []leftover {
	kept := out[:0]
	for _, l := range out {
		if l.entry.mode.IsDir() && l.files == 0 && l.outputs > 0 {
			continue
		}
		kept = append(kept, l)
	}
	return kept
}

// ancestorIn returns the nearest ancestor of p among the keys of dirs, "" if none. "." (the
// watched directory itself, new when it did not exist before) is every path's ancestor.
func ancestorIn(dirs map[string]int, p string) string {
	for d := filepath.Dir(p); ; d = filepath.Dir(d) {
		if _, ok := dirs[d]; ok {
			return d
		}
		if d == "." || d == "/" {
			return "\x00" // no such key
		}
	}
}

func (l leftover) describe() string {
	m := l.entry.mode
	switch {
	case m.IsDir():
		return fmt.Sprintf("%s/ (directory %04o, %d entr%s below, %s)", l.path, m.Perm(), l.files, plural(l.files, "y", "ies"), human.Bytes(float64(l.bytes)))
	case m&fs.ModeSymlink != 0:
		target, _ := os.Readlink(l.path)
		return fmt.Sprintf("%s (symbolic link to %s)", l.path, target)
	case m.IsRegular():
		return fmt.Sprintf("%s (file %04o, %s)", l.path, m.Perm(), human.Bytes(float64(l.entry.size)))
	}
	return fmt.Sprintf("%s (%s)", l.path, m.Type())
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
