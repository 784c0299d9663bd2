// Package human writes quantities for people, the same way in every killtest report (markdown,
// HTML, JUnit, the console): durations as a person would write them ("120 ms", "7.19 s",
// "2 min 05 s"), byte counts in binary units ("1.5 MiB"). Machine formats (JSON, CSV) keep raw
// numbers; this package is for text meant to be read.
package human

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Duration writes d with three significant digits below a minute ("850 µs", "120 ms", "7.19 s",
// "12.3 s"), then in minutes and seconds ("2 min 05 s"), hours and minutes ("1 h 02 min"), or
// days and hours ("3 d 04 h"). Zero is "0 s".
func Duration(d time.Duration) string {
	switch {
	case d == math.MinInt64:
		d++ // -d would overflow; a nanosecond does not show at this scale
		fallthrough
	case d < 0:
		return "-" + Duration(-d)
	case d == 0:
		return "0 s"
	}
	for _, u := range []struct {
		size  time.Duration
		name  string
		below float64 // the next unit takes over from here
	}{{time.Nanosecond, "ns", 1000}, {time.Microsecond, "µs", 1000}, {time.Millisecond, "ms", 1000}, {time.Second, "s", 60}} {
		if v := sig3(float64(d) / float64(u.size)); v < u.below {
			return trim(v) + " " + u.name
		}
	}
	s := int64(math.Round(d.Seconds()))
	switch {
	case s < 3600:
		return fmt.Sprintf("%d min %02d s", s/60, s%60)
	case s < 86400:
		m := (s + 30) / 60 // round to the minute
		if m%60 == 0 && m/60 == 24 {
			return "1 d 00 h"
		}
		return fmt.Sprintf("%d h %02d min", m/60, m%60)
	}
	h := (s + 1800) / 3600 // round to the hour
	return fmt.Sprintf("%d d %02d h", h/24, h%24)
}

// sig3 rounds v to three significant digits.
func sig3(v float64) float64 {
	if v == 0 {
		return 0
	}
	p := math.Pow(10, 2-math.Floor(math.Log10(v)))
	return math.Round(v*p) / p
}

// trim writes v with at most two decimals and no trailing zeros ("7.19", "7.2", "120").
func trim(v float64) string {
	s := strconv.FormatFloat(v, 'f', 2, 64)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// Bytes writes b in binary units with one decimal ("512 B", "1.5 KiB", "16.0 MiB").
func Bytes(b float64) string {
	switch {
	case b < 0:
		return "-" + Bytes(-b)
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", b/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", b/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", b/(1<<10))
	}
	return fmt.Sprintf("%.0f B", b)
}
