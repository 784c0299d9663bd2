package detect

import (
	"slices"
)

// TheilSen fits y = intercept + slope*x to the points (i, ys[i]) with the Theil–Sen estimator:
// the slope is the median of the slopes of all pairs, the intercept the median of
// y - slope*x. It ignores up to ~29 % outliers (a GC spike, one slow cycle), which a least-squares
// fit would follow. With fewer than two points it returns (0, ys[0]) or (0, 0). O(n²) pairs: the
// inputs are per-cycle series (tens to hundreds of points).
func TheilSen(ys []float64) (slope, intercept float64) {
	n := len(ys)
	switch n {
	case 0:
		return 0, 0
	case 1:
		return 0, ys[0]
	}
	slopes := make([]float64, 0, n*(n-1)/2)
	for i := range n {
		for j := i + 1; j < n; j++ {
			slopes = append(slopes, (ys[j]-ys[i])/float64(j-i))
		}
	}
	slope = median(slopes)
	res := make([]float64, n)
	for i, y := range ys {
		res[i] = y - slope*float64(i)
	}
	return slope, median(res)
}

// median sorts v in place and returns its median (0 for an empty slice).
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	m := len(v) / 2
	if len(v)%2 == 1 {
		return v[m]
	}
	return (v[m-1] + v[m]) / 2
}
