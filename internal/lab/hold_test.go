package lab

import (
	"context"
	"testing"
	"time"
)

// TestHoldSlow: with HoldSlow a slow proxy answers nothing until ReleaseSlow (a client gives up
// first), and after it answers as a live proxy; without HoldSlow, ReleaseSlow does nothing.
func TestHoldSlow(t *testing.T) {
	t.Parallel()
	for _, hold := range []bool{true, false} {
		l, err := Start(context.Background(), Config{Slow: 1, SlowDelay: time.Millisecond, HoldSlow: hold})
		if err != nil {
			t.Fatal(err)
		}
		tr := l.Truth()[0]
		f := fetch{proxy: tr.Proxy, scheme: tr.Scheme, judgeURL: l.JudgeURL(), token: "t", timeout: time.Minute}
		if hold {
			// Held, it cannot answer however long the client waits: a short wait suffices.
			held := f
			held.timeout = 300 * time.Millisecond
			if page, err := held.do(context.Background()); !isTimeout(err) {
				t.Errorf("held slow proxy: page %+v, err %v; want a timeout", page, err)
			}
		}
		l.ReleaseSlow()
		l.ReleaseSlow() // twice is fine
		if page, err := f.do(context.Background()); err != nil || page.Token != "t" {
			t.Errorf("hold %v, released: page %+v, err %v; want the judge page", hold, page, err)
		}
		stopLab(t, l)
	}
}
