package proctab

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrMalformed is returned (wrapped) for a stat line that cannot be parsed.
var ErrMalformed = errors.New("malformed stat line")

// ParseStat parses the contents of /proc/<pid>/stat. The command name is the text between the
// first '(' and the LAST ')': it may itself contain spaces and parentheses.
func ParseStat(b []byte) (Proc, error) {
	return parseStat(b, nil)
}

// parseStat is ParseStat with an optional intern table for Comm, so that a 10 Hz snapshot does
// not allocate a new string per process per tick.
func parseStat(b []byte, intern map[string]string) (Proc, error) {
	var p Proc
	rest, err := p.parseHead(b, intern)
	if err != nil {
		return p, err
	}
	return p, p.parseFields(rest)
}

// parseHead parses the pid and the comm (between the first '(' and the last ')') and returns
// what follows the comm.
func (p *Proc) parseHead(b []byte, intern map[string]string) ([]byte, error) {
	open := bytes.IndexByte(b, '(')
	end := bytes.LastIndexByte(b, ')')
	if open < 1 || end < open {
		return nil, fmt.Errorf("%w: no (comm)", ErrMalformed)
	}
	pid, ok := atoi(bytes.TrimSpace(b[:open]))
	if !ok || pid <= 0 {
		return nil, fmt.Errorf("%w: bad pid %q", ErrMalformed, b[:open])
	}
	p.PID = int(pid)
	comm := b[open+1 : end]
	switch s, ok := intern[string(comm)]; {
	case ok:
		p.Comm = s
	case intern != nil:
		p.Comm = string(comm)
		if len(intern) < 4096 {
			intern[p.Comm] = p.Comm
		}
	default:
		p.Comm = string(comm)
	}
	return b[end+1:], nil
}

// lastStatField is the last field of proc(5)'s stat the parser reads (rss).
const lastStatField = 24

// parseFields parses the fields after the comm, numbered as in proc(5): 3 state, 4 ppid, 5 pgrp,
// 6 session, 9 flags, 14 utime, 15 stime, 20 num_threads, 22 starttime, 24 rss. The loop is
// the snapshot's hot path: it stays in one function, without allocation.
func (p *Proc) parseFields(rest []byte) error {
	field := 2
	for len(rest) > 0 && field < lastStatField {
		if rest[0] != ' ' { // skip one separator
			return fmt.Errorf("%w: field %d: want space", ErrMalformed, field+1)
		}
		rest = rest[1:]
		var tok []byte
		if i := bytes.IndexByte(rest, ' '); i < 0 {
			tok, rest = bytes.TrimRight(rest, "\n"), nil
		} else {
			tok, rest = rest[:i], rest[i:]
		}
		field++
		if len(tok) == 0 {
			return fmt.Errorf("%w: field %d empty", ErrMalformed, field)
		}
		switch field {
		case 3:
			if len(tok) != 1 || !(tok[0] >= 'A' && tok[0] <= 'Z' || tok[0] >= 'a' && tok[0] <= 'z') {
				return fmt.Errorf("%w: state %q", ErrMalformed, tok)
			}
			p.State = tok[0]
			continue
		case 4, 5, 6, 9, 14, 15, 20, 22, 24:
		default:
			continue
		}
		v, ok := atoi(tok)
		if !ok || (v < 0 && (field == 9 || field == 14 || field == 15 || field == 22)) || (field == 9 && v > 1<<32-1) {
			return fmt.Errorf("%w: field %d %q", ErrMalformed, field, tok)
		}
		p.setNumber(field, v)
	}
	if field < lastStatField {
		return fmt.Errorf("%w: only %d fields", ErrMalformed, field)
	}
	return nil
}

// setNumber stores the value of a numeric field the parser keeps.
func (p *Proc) setNumber(field int, v int64) {
	switch field {
	case 4:
		p.PPID = int(v)
	case 5:
		p.PGID = int(v)
	case 6:
		p.SID = int(v)
	case 9:
		p.Flags = uint32(v)
	case 14:
		p.UTime = uint64(v)
	case 15:
		p.STime = uint64(v)
	case 20:
		p.Threads = int(v)
	case 22:
		p.StartTime = uint64(v)
	case 24:
		p.RSSPages = v
	}
}

// atoi parses an optionally negative decimal integer without allocating.
func atoi(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	neg := false
	if b[0] == '-' {
		neg, b = true, b[1:]
		if len(b) == 0 {
			return 0, false
		}
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if n > (1<<63-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	if neg {
		n = -n
	}
	return n, true
}

// Reader takes snapshots of the process table. It reuses its buffers between calls and is not
// safe for concurrent use; give each goroutine its own.
//
// It is written over raw getdents64/openat/read rather than os.ReadDir and os.ReadFile (or
// procfs.AllProcs, which parses far more than we need) because it runs at 10 Hz over every
// process on the machine: this way a snapshot allocates nothing in the steady state.
type Reader struct {
	root   string            // "/proc" unless set by tests
	dirbuf []byte            // getdents64 buffer
	path   []byte            // "<pid>/stat\x00"
	buf    []byte            // stat file contents
	pids   []int             // pids found in the last directory pass
	intern map[string]string // comm strings, so snapshots do not allocate
}

// NewReader returns a Reader over /proc.
func NewReader() *Reader {
	return &Reader{
		root:   "/proc",
		dirbuf: make([]byte, 32<<10),
		path:   make([]byte, 0, 32),
		buf:    make([]byte, 1024),
		intern: make(map[string]string),
	}
}

// Snapshot appends every process in /proc to dst[:0] and returns it. Processes that exit
// during the pass are skipped. It reads only /proc/[0-9]*/stat, one read per process.
func (r *Reader) Snapshot(dst []Proc) ([]Proc, error) {
	dst = dst[:0]
	dirfd, err := unix.Open(r.root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return dst, fmt.Errorf("open %s: %w", r.root, err)
	}
	defer unix.Close(dirfd)
	r.pids = r.pids[:0]
	for {
		n, err := unix.Getdents(dirfd, r.dirbuf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return dst, fmt.Errorf("read directory %s: %w", r.root, err)
		}
		if n <= 0 {
			break
		}
		r.pids = appendPIDs(r.pids, r.dirbuf[:n])
	}
	for _, pid := range r.pids {
		p, ok, err := r.stat(dirfd, pid)
		if err != nil {
			return dst, err
		}
		if ok {
			dst = append(dst, p)
		}
	}
	return dst, nil
}

// appendPIDs decodes linux_dirent64 records and appends the numeric names.
func appendPIDs(pids []int, b []byte) []int {
	const nameOff = 19 // d_ino 8, d_off 8, d_reclen 2, d_type 1
	for len(b) >= nameOff {
		reclen := int(*(*uint16)(unsafe.Pointer(&b[16]))) // native byte order
		if reclen < nameOff || reclen > len(b) {
			break
		}
		name := b[nameOff:reclen]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		if len(name) > 0 && name[0] >= '1' && name[0] <= '9' {
			if v, ok := atoi(name); ok {
				pids = append(pids, int(v))
			}
		}
		b = b[reclen:]
	}
	return pids
}

// stat reads and parses one stat file relative to dirfd. ok is false when the process is gone.
func (r *Reader) stat(dirfd, pid int) (Proc, bool, error) {
	r.path = strconv.AppendInt(r.path[:0], int64(pid), 10)
	r.path = append(r.path, "/stat\x00"...)
	fd, _, errno := unix.Syscall6(unix.SYS_OPENAT, uintptr(dirfd), uintptr(unsafe.Pointer(&r.path[0])),
		uintptr(unix.O_RDONLY|unix.O_CLOEXEC), 0, 0, 0)
	if errno != 0 {
		if errno == unix.ENOENT || errno == unix.ESRCH {
			return Proc{}, false, nil
		}
		return Proc{}, false, fmt.Errorf("open %s/%d/stat: %w", r.root, pid, errno)
	}
	defer unix.Close(int(fd))
	for {
		n, err := unix.Read(int(fd), r.buf)
		if err == unix.EINTR {
			continue
		}
		if err == unix.ESRCH {
			return Proc{}, false, nil
		}
		if err != nil {
			return Proc{}, false, fmt.Errorf("read %s/%d/stat: %w", r.root, pid, err)
		}
		if n == len(r.buf) { // a stat line never is this long, but be correct: grow and retry
			r.buf = make([]byte, 2*len(r.buf))
			if _, err := unix.Seek(int(fd), 0, 0); err != nil {
				return Proc{}, false, fmt.Errorf("seek %s/%d/stat: %w", r.root, pid, err)
			}
			continue
		}
		if n == 0 {
			return Proc{}, false, nil
		}
		p, err := parseStat(r.buf[:n], r.intern)
		if err != nil {
			return Proc{}, false, fmt.Errorf("parse %s/%d/stat: %w", r.root, pid, err)
		}
		return p, true, nil
	}
}

// Stat reads one process's stat line. The error wraps os.ErrNotExist when the process is gone.
func Stat(pid int) (Proc, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return Proc{}, fmt.Errorf("read stat of pid %d: %w", pid, os.ErrNotExist)
		}
		return Proc{}, fmt.Errorf("read stat of pid %d: %w", pid, err)
	}
	p, err := ParseStat(b)
	if err != nil {
		return Proc{}, fmt.Errorf("parse stat of pid %d: %w", pid, err)
	}
	return p, nil
}
