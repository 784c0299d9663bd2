package supervise

import (
	"errors"
	"io"
	"os"
	"sync/atomic"
	"syscall"
)

const defaultOutputLimit = 1 << 20

// capture copies one output stream of a task to w, keeping at most limit bytes and reading
// (and dropping) the rest so the task never blocks on a full pipe.
type capture struct {
	r         *os.File
	w         io.Writer
	limit     int64
	truncated atomic.Bool
	done      chan struct{}
}

func startCapture(r *os.File, w io.Writer, limit int64) *capture {
	c := &capture{r: r, w: w, limit: limit, done: make(chan struct{})}
	go c.run()
	return c
}

func (c *capture) run() {
	defer close(c.done)
	buf := make([]byte, 8<<10)
	var kept int64
	for {
		n, err := c.r.Read(buf)
		if n > 0 {
			keep := min(int64(n), c.limit-kept)
			if keep < int64(n) {
				c.truncated.Store(true)
			}
			if keep > 0 && c.w != nil {
				if _, werr := c.w.Write(buf[:keep]); werr != nil {
					c.w = nil // the consumer is gone; keep draining
				}
			}
			kept += keep
		}
		if err != nil {
			// EOF for pipes; EIO for a pseudo-terminal whose other side closed.
			if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.EIO) && !errors.Is(err, os.ErrClosed) {
				c.truncated.Store(true)
			}
			return
		}
	}
}
