package pool

import (
	"context"
	"fmt"
	"time"
)

// History retention, in small steps so that no step holds the database long: a caller (the
// pruner of `proxyline run`) calls them in a loop, each in its own short transaction, and the
// checks' writes go in between.

// PruneOlder deletes at most limit history rows checked before cutoff, the oldest first (a walk
// of the index proxyline_check_age). It returns how many it deleted: fewer than limit means
// nothing older is left.
func PruneOlder(ctx context.Context, db DB, cutoff time.Time, limit int) (int64, error) {
	n, err := db.Exec(ctx, `DELETE FROM proxyline_check WHERE (job_id, addr, scheme) IN
		(SELECT job_id, addr, scheme FROM proxyline_check WHERE checked_at < ? ORDER BY checked_at LIMIT ?)`,
		cutoff.UnixMilli(), limit)
	if err != nil {
		return 0, fmt.Errorf("prune history older than %s: %w", cutoff.UTC().Format(time.RFC3339), err)
	}
	return n, nil
}

// PruneCursor is where PruneExcess stopped: the last proxy it looked at. The zero value starts at
// the beginning.
type PruneCursor struct{ Addr, Scheme string }

// PruneExcess keeps the newest keep history rows of each of at most limit proxies after cursor
// (in key order), deleting the older ones (rows that share the keep-th newest row's time are
// kept too). It returns the rows deleted and the cursor to pass next; the zero PruneCursor when it
// reached the end (the next call starts again from the beginning).
func PruneExcess(ctx context.Context, db DB, keep int, after PruneCursor, limit int) (int64, PruneCursor, error) {
	rows, err := db.Query(ctx, `SELECT addr, scheme FROM proxyline_proxy WHERE (addr, scheme) > (?, ?)
		ORDER BY addr, scheme LIMIT ?`, after.Addr, after.Scheme, limit)
	if err != nil {
		return 0, after, fmt.Errorf("prune history beyond %d rows a proxy: %w", keep, err)
	}
	var batch []PruneCursor
	for rows.Next() {
		var c PruneCursor
		if err := rows.Scan(&c.Addr, &c.Scheme); err != nil {
			rows.Close()
			return 0, after, fmt.Errorf("prune history beyond %d rows a proxy: %w", keep, err)
		}
		batch = append(batch, c)
	}
	if err := errorsOf(rows); err != nil {
		return 0, after, fmt.Errorf("prune history beyond %d rows a proxy: %w", keep, err)
	}
	var deleted int64
	for _, c := range batch {
		n, err := db.Exec(ctx, `DELETE FROM proxyline_check WHERE addr = ? AND scheme = ? AND checked_at <
			(SELECT checked_at FROM proxyline_check WHERE addr = ? AND scheme = ? ORDER BY checked_at DESC LIMIT 1 OFFSET ?)`,
			c.Addr, c.Scheme, c.Addr, c.Scheme, keep-1)
		if err != nil {
			return deleted, after, fmt.Errorf("prune history of %s beyond %d rows: %w", c.Addr, keep, err)
		}
		deleted += n
	}
	if len(batch) < limit {
		return deleted, PruneCursor{}, nil
	}
	return deleted, batch[len(batch)-1], nil
}
