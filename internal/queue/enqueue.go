package queue

import (
	"cmp"
	"context"
	"fmt"

	"github.com/riverqueue/river"
)

// DefaultChunk is how many proxies a check job carries when the caller does not say.
const DefaultChunk = 100

// Chunk is a run of proxies with where it came from.
type Chunk struct {
	Proxies []string
	Source  string // e.g. "list.txt#101": the list and the position of the first proxy in it
}

// Split cuts proxies into chunks of size n (default DefaultChunk), each named after the list
// (name) and the position of its first proxy in it ("list.txt#101").
func Split(proxies []string, name string, n int) []Chunk {
	n = cmp.Or(n, DefaultChunk)
	var out []Chunk
	for i := 0; i < len(proxies); i += n {
		j := min(i+n, len(proxies))
		out = append(out, Chunk{Proxies: proxies[i:j:j], Source: fmt.Sprintf("%s#%d", name, i+1)})
	}
	return out
}

// EnqueueChecks inserts one check job per chunk, all in one transaction: all or nothing. It
// returns the new job ids.
func (s *Store) EnqueueChecks(ctx context.Context, chunks []Chunk, opts CheckOptions) ([]int64, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	params := make([]river.InsertManyParams, len(chunks))
	for i, c := range chunks {
		params[i] = river.InsertManyParams{Args: CheckArgs{Proxies: c.Proxies, Options: opts, Source: c.Source}}
	}
	res, err := s.eng.insertMany(ctx, params)
	if err != nil {
		return nil, err
	}
	ids := make([]int64, len(res))
	for i, r := range res {
		ids[i] = r.Job.ID
	}
	return ids, nil
}
