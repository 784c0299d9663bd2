package human

import (
	"testing"
	"time"
)

func TestDuration(t *testing.T) {
	t.Parallel()
	cases := []struct {
		d    time.Duration
		want string
	}{
		{0, "0 s"},
		{850, "850 ns"},
		{2500 * time.Nanosecond, "2.5 µs"},
		{120 * time.Millisecond, "120 ms"},
		{120400 * time.Microsecond, "120 ms"},
		{999999 * time.Microsecond, "1 s"},
		{7193466851, "7.19 s"},
		{2 * time.Second, "2 s"},
		{12345 * time.Millisecond, "12.3 s"},
		{59940 * time.Millisecond, "59.9 s"},
		{59960 * time.Millisecond, "1 min 00 s"},
		{125 * time.Second, "2 min 05 s"},
		{3599 * time.Second, "59 min 59 s"},
		{3720 * time.Second, "1 h 02 min"},
		{86399 * time.Second, "1 d 00 h"},
		{(3*24 + 4) * time.Hour, "3 d 04 h"},
		{-1500 * time.Millisecond, "-1.5 s"},
	}
	for _, c := range cases {
		if got := Duration(c.d); got != c.want {
			t.Errorf("Duration(%v) = %q, want %q", c.d, got, c.want)
		}
	}
}

func TestBytes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		b    float64
		want string
	}{{0, "0 B"}, {512, "512 B"}, {1536, "1.5 KiB"}, {16 << 20, "16.0 MiB"}, {3 << 30, "3.0 GiB"}, {-2048, "-2.0 KiB"}}
	for _, c := range cases {
		if got := Bytes(c.b); got != c.want {
			t.Errorf("Bytes(%v) = %q, want %q", c.b, got, c.want)
		}
	}
}

func FuzzDuration(f *testing.F) {
	f.Add(int64(7193466851))
	f.Add(int64(-1))
	f.Add(int64(1 << 62))
	f.Add(int64(-1 << 63))
	f.Fuzz(func(t *testing.T, n int64) {
		if s := Duration(time.Duration(n)); s == "" {
			t.Fatalf("Duration(%d) is empty", n)
		}
	})
}
