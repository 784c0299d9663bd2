package pool

// The pool's counts, kept by the database itself: status, the metrics and the sources page read
// a handful of counter rows instead of counting a million proxies, four million checks and a join
// of every sighting with the pool.
//
// Triggers keep the counters in the transaction of every write to the counted tables, whoever
// writes (Record, RecordSightings, a future pruner, a hand-written DELETE): a trigger sees the row
// as it really was and is, so the counts are exact, not estimates.
//
//   - proxyline_pool_count: current rows by (class, protocol, anonymity).
//   - proxyline_history_count: rows of proxyline_check.
//   - proxyline_source_count: per source, the proxies it named, how many the pool has a result
//     for, how many are alive, and when it last named one.
//
// SQLite has one writer at a time and row triggers: one counter row per key (shard 0). On
// PostgreSQL the triggers are per statement (transition tables: one counter update per key and
// statement, not per row), and the pool and history counters are split in 16 shards by the
// writing connection (pg_backend_pid() % 16), summed when read, so that concurrent workers do not
// queue on one row. A source's checked and alive depend on two tables written by different
// transactions (a scrape's sightings, a worker's results); every writer of
// proxyline_source_count first takes one transaction-scoped advisory lock, so a sighting never
// misses a result committed beside it (or the other way round) under READ COMMITTED. Only
// results that add a proxy or flip it between alive and not take the lock.

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/proxyline/proxyline/internal/check"
)

// CountsVersion is the pool migration that adds the counters (renumbered when migrations merge:
// refer to it by this name).
const CountsVersion = 6

// pgShard is a PostgreSQL writer's counter shard.
const pgShard = `pg_backend_pid() % 16`

// pgSourceLock is taken by every writer of proxyline_source_count (see the file's comment). Its
// key names the schema: pools in other schemas of the database do not wait for each other.
const pgSourceLock = `PERFORM pg_advisory_xact_lock(hashtext(TG_TABLE_SCHEMA || '.proxyline_source_count'));`

func countsMigration() migration {
	return migration{
		version: CountsVersion,
		statements: []string{
			`CREATE TABLE IF NOT EXISTS proxyline_pool_count (
				class     TEXT    NOT NULL,
				protocol  TEXT    NOT NULL,
				anonymity TEXT    NOT NULL,
				shard     INTEGER NOT NULL,
				proxies   BIGINT  NOT NULL,
				PRIMARY KEY (class, protocol, anonymity, shard)
			)`,
			`CREATE TABLE IF NOT EXISTS proxyline_history_count (
				shard  INTEGER NOT NULL PRIMARY KEY,
				checks BIGINT  NOT NULL
			)`,
			`CREATE TABLE IF NOT EXISTS proxyline_source_count (
				source    TEXT   NOT NULL PRIMARY KEY,
				named     BIGINT NOT NULL,
				checked   BIGINT NOT NULL,
				alive     BIGINT NOT NULL,
				last_seen BIGINT NOT NULL
			)`,
			// A proxy's sightings, for the triggers that move its sources' counts.
			`CREATE INDEX IF NOT EXISTS proxyline_source_proxy_addr ON proxyline_source_proxy (addr, scheme, source)`,
			// export's default (the live proxies as a list, fastest first) walks the listing
			// index alone when it carries the proxy column: fetching that from the table row by
			// row was most of export's time. So the listing index of version 4 gets it, as its
			// last column (the order and the filters' columns unchanged): still one index.
			`CREATE INDEX IF NOT EXISTS proxyline_proxy_listing_proxy ON proxyline_proxy
				(class, total_ms, addr, scheme, protocol, anonymity, checked_at, proxy)`,
			`DROP INDEX IF EXISTS proxyline_proxy_listing`,
		},
		perDialect: map[Dialect][]string{SQLite: sqliteCountTriggers(), Postgres: pgCountTriggers()},
		// After the triggers: on PostgreSQL, CREATE TRIGGER locks the table against writers until
		// the migration commits, so no write falls between the counting and the triggers.
		fill: []string{
			`INSERT INTO proxyline_pool_count (class, protocol, anonymity, shard, proxies)
				SELECT class, protocol, anonymity, 0, count(*) FROM proxyline_proxy GROUP BY class, protocol, anonymity`,
			`INSERT INTO proxyline_history_count (shard, checks) SELECT 0, count(*) FROM proxyline_check`,
			`INSERT INTO proxyline_source_count (source, named, checked, alive, last_seen)
				SELECT s.source, count(*), count(p.addr), count(CASE WHEN p.class = 'alive' THEN 1 END), max(s.last_seen)
				FROM proxyline_source_proxy s LEFT JOIN proxyline_proxy p ON p.addr = s.addr AND p.scheme = s.scheme
				GROUP BY s.source`,
		},
		down: map[Dialect][]string{SQLite: countsDown(SQLite), Postgres: countsDown(Postgres)},
	}
}

// countTriggers names each trigger with its table (and, on PostgreSQL, its function).
var countTriggers = [][2]string{
	{"proxyline_proxy_counted", "proxyline_proxy"},
	{"proxyline_proxy_recounted", "proxyline_proxy"},
	{"proxyline_proxy_alive_recounted", "proxyline_proxy"},
	{"proxyline_proxy_uncounted", "proxyline_proxy"},
	{"proxyline_check_counted", "proxyline_check"},
	{"proxyline_check_uncounted", "proxyline_check"},
	{"proxyline_source_proxy_counted", "proxyline_source_proxy"},
	{"proxyline_source_proxy_seen", "proxyline_source_proxy"},
	{"proxyline_source_proxy_uncounted", "proxyline_source_proxy"},
}

func countsDown(d Dialect) []string {
	var out []string
	for _, t := range countTriggers {
		if d == Postgres {
			out = append(out, `DROP TRIGGER IF EXISTS `+t[0]+` ON `+t[1], `DROP FUNCTION IF EXISTS `+t[0]+`()`)
		} else {
			out = append(out, `DROP TRIGGER IF EXISTS `+t[0])
		}
	}
	return append(out, `CREATE INDEX IF NOT EXISTS proxyline_proxy_listing ON proxyline_proxy
				(class, total_ms, addr, scheme, protocol, anonymity, checked_at)`,
		`DROP INDEX IF EXISTS proxyline_proxy_listing_proxy`, `DROP INDEX IF EXISTS proxyline_source_proxy_addr`, `DROP TABLE IF EXISTS proxyline_pool_count`,
		`DROP TABLE IF EXISTS proxyline_history_count`, `DROP TABLE IF EXISTS proxyline_source_count`)
}

// sqliteCountTriggers are row triggers: SQLite has one writer at a time, one counter row per key.
func sqliteCountTriggers() []string {
	const (
		countNew = `INSERT INTO proxyline_pool_count (class, protocol, anonymity, shard, proxies)
			VALUES (NEW.class, NEW.protocol, NEW.anonymity, 0, 1)
			ON CONFLICT (class, protocol, anonymity, shard) DO UPDATE SET proxies = proxies + 1;`
		uncountOld = `UPDATE proxyline_pool_count SET proxies = proxies - 1
			WHERE class = OLD.class AND protocol = OLD.protocol AND anonymity = OLD.anonymity AND shard = 0;`
		sourcesOf = `source IN (SELECT source FROM proxyline_source_proxy WHERE addr = %[1]s.addr AND scheme = %[1]s.scheme)`
		proxyOf   = `FROM proxyline_proxy WHERE addr = %[1]s.addr AND scheme = %[1]s.scheme`
	)
	return []string{
		`CREATE TRIGGER IF NOT EXISTS proxyline_proxy_counted AFTER INSERT ON proxyline_proxy BEGIN ` + countNew + `
			UPDATE proxyline_source_count SET checked = checked + 1, alive = alive + (NEW.class = 'alive')
				WHERE ` + fmt.Sprintf(sourcesOf, "NEW") + `;
		END`,
		`CREATE TRIGGER IF NOT EXISTS proxyline_proxy_recounted AFTER UPDATE OF class, protocol, anonymity ON proxyline_proxy
			WHEN OLD.class <> NEW.class OR OLD.protocol <> NEW.protocol OR OLD.anonymity <> NEW.anonymity
			BEGIN ` + uncountOld + countNew + ` END`,
		`CREATE TRIGGER IF NOT EXISTS proxyline_proxy_alive_recounted AFTER UPDATE OF class ON proxyline_proxy
			WHEN (OLD.class = 'alive') <> (NEW.class = 'alive') BEGIN
			UPDATE proxyline_source_count SET alive = alive + (CASE WHEN NEW.class = 'alive' THEN 1 ELSE -1 END)
				WHERE ` + fmt.Sprintf(sourcesOf, "NEW") + `;
		END`,
		`CREATE TRIGGER IF NOT EXISTS proxyline_proxy_uncounted AFTER DELETE ON proxyline_proxy BEGIN ` + uncountOld + `
			UPDATE proxyline_source_count SET checked = checked - 1, alive = alive - (OLD.class = 'alive')
				WHERE ` + fmt.Sprintf(sourcesOf, "OLD") + `;
		END`,
		`CREATE TRIGGER IF NOT EXISTS proxyline_check_counted AFTER INSERT ON proxyline_check BEGIN
			UPDATE proxyline_history_count SET checks = checks + 1 WHERE shard = 0;
		END`,
		`CREATE TRIGGER IF NOT EXISTS proxyline_check_uncounted AFTER DELETE ON proxyline_check BEGIN
			UPDATE proxyline_history_count SET checks = checks - 1 WHERE shard = 0;
		END`,
		// An aggregate without GROUP BY is one row, found or not; its WHERE also keeps SQLite's
		// parser from reading ON CONFLICT as a join's ON.
		`CREATE TRIGGER IF NOT EXISTS proxyline_source_proxy_counted AFTER INSERT ON proxyline_source_proxy BEGIN
			INSERT INTO proxyline_source_count (source, named, checked, alive, last_seen)
				SELECT NEW.source, 1, count(*), count(CASE WHEN class = 'alive' THEN 1 END), NEW.last_seen
				` + fmt.Sprintf(proxyOf, "NEW") + `
				ON CONFLICT (source) DO UPDATE SET named = named + 1, checked = checked + excluded.checked,
					alive = alive + excluded.alive, last_seen = max(last_seen, excluded.last_seen);
		END`,
		`CREATE TRIGGER IF NOT EXISTS proxyline_source_proxy_seen AFTER UPDATE OF last_seen ON proxyline_source_proxy
			WHEN NEW.last_seen > OLD.last_seen BEGIN
			UPDATE proxyline_source_count SET last_seen = max(last_seen, NEW.last_seen) WHERE source = NEW.source;
		END`,
		`CREATE TRIGGER IF NOT EXISTS proxyline_source_proxy_uncounted AFTER DELETE ON proxyline_source_proxy BEGIN
			UPDATE proxyline_source_count SET named = named - 1,
				checked = checked - (SELECT count(*) ` + fmt.Sprintf(proxyOf, "OLD") + `),
				alive = alive - (SELECT count(*) ` + fmt.Sprintf(proxyOf, "OLD") + ` AND class = 'alive')
				WHERE source = OLD.source;
		END`,
	}
}

// pgFunc returns the statements that create a statement-level trigger and its function.
func pgFunc(name, table, event, referencing, body string) []string {
	return []string{
		`CREATE OR REPLACE FUNCTION ` + name + `() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
		` + body + `
		RETURN NULL;
		END $$`,
		`DROP TRIGGER IF EXISTS ` + name + ` ON ` + table,
		`CREATE TRIGGER ` + name + ` AFTER ` + event + ` ON ` + table + ` REFERENCING ` + referencing +
			` FOR EACH STATEMENT EXECUTE FUNCTION ` + name + `()`,
	}
}

// pgPoolCount adds the rows of a SELECT (class, protocol, anonymity, d) to this writer's shard.
func pgPoolCount(selectDeltas string) string {
	return `INSERT INTO proxyline_pool_count AS c (class, protocol, anonymity, shard, proxies)
		SELECT class, protocol, anonymity, ` + pgShard + `, sum(d) FROM (` + selectDeltas + `) x
		GROUP BY class, protocol, anonymity HAVING sum(d) <> 0 ORDER BY class, protocol, anonymity
		ON CONFLICT (class, protocol, anonymity, shard) DO UPDATE SET proxies = c.proxies + excluded.proxies;`
}

// pgSourceCount adds the rows of a SELECT (source, named, checked, alive, last_seen), one per
// source, to proxyline_source_count, under the advisory lock, when cond holds.
func pgSourceCount(cond, selectDeltas string) string {
	return `IF ` + cond + ` THEN
		` + pgSourceLock + `
		INSERT INTO proxyline_source_count AS c (source, named, checked, alive, last_seen)
			SELECT * FROM (` + selectDeltas + `) x ORDER BY 1
			ON CONFLICT (source) DO UPDATE SET named = c.named + excluded.named, checked = c.checked + excluded.checked,
				alive = c.alive + excluded.alive, last_seen = GREATEST(c.last_seen, excluded.last_seen);
		END IF;`
}

func pgHistoryCount(sign string) string {
	return `INSERT INTO proxyline_history_count AS c (shard, checks)
		SELECT ` + pgShard + `, ` + sign + `count(*) FROM proxyline_changed HAVING count(*) > 0
		ON CONFLICT (shard) DO UPDATE SET checks = c.checks + excluded.checks;`
}

// pgCountTriggers are statement triggers over transition tables: one counter update per key and
// statement.
func pgCountTriggers() []string {
	const (
		sightingsOf = ` JOIN proxyline_source_proxy s ON s.addr = %[1]s.addr AND s.scheme = %[1]s.scheme `
		flipped     = ` FROM proxyline_old o JOIN proxyline_new n ON n.addr = o.addr AND n.scheme = o.scheme
			WHERE (o.class = 'alive') <> (n.class = 'alive')`
	)
	var out []string
	add := func(s []string) { out = append(out, s...) }
	add(pgFunc("proxyline_proxy_counted", "proxyline_proxy", "INSERT", "NEW TABLE AS proxyline_new",
		pgPoolCount(`SELECT class, protocol, anonymity, 1 AS d FROM proxyline_new`)+
			pgSourceCount(`EXISTS (SELECT 1 FROM proxyline_new)`,
				`SELECT s.source, 0::bigint, count(*), count(*) FILTER (WHERE n.class = 'alive'), 0::bigint
				FROM proxyline_new n`+fmt.Sprintf(sightingsOf, "n")+`GROUP BY s.source`)))
	add(pgFunc("proxyline_proxy_recounted", "proxyline_proxy", "UPDATE",
		"OLD TABLE AS proxyline_old NEW TABLE AS proxyline_new",
		pgPoolCount(`SELECT class, protocol, anonymity, -1 AS d FROM proxyline_old
			UNION ALL SELECT class, protocol, anonymity, 1 FROM proxyline_new`)+
			pgSourceCount(`EXISTS (SELECT 1`+flipped+`)`,
				`SELECT s.source, 0::bigint, 0::bigint, sum(CASE WHEN n.class = 'alive' THEN 1 ELSE -1 END), 0::bigint`+
					strings.Replace(flipped, "WHERE", fmt.Sprintf(sightingsOf, "n")+"WHERE", 1)+` GROUP BY s.source`)))
	// (SQLite's proxyline_proxy_alive_recounted is part of proxyline_proxy_recounted here.)
	add(pgFunc("proxyline_proxy_uncounted", "proxyline_proxy", "DELETE", "OLD TABLE AS proxyline_old",
		pgPoolCount(`SELECT class, protocol, anonymity, -1 AS d FROM proxyline_old`)+
			pgSourceCount(`EXISTS (SELECT 1 FROM proxyline_old)`,
				`SELECT s.source, 0::bigint, -count(*), -count(*) FILTER (WHERE o.class = 'alive'), 0::bigint
				FROM proxyline_old o`+fmt.Sprintf(sightingsOf, "o")+`GROUP BY s.source`)))
	add(pgFunc("proxyline_check_counted", "proxyline_check", "INSERT", "NEW TABLE AS proxyline_changed", pgHistoryCount("")))
	add(pgFunc("proxyline_check_uncounted", "proxyline_check", "DELETE", "OLD TABLE AS proxyline_changed", pgHistoryCount("-")))
	add(pgFunc("proxyline_source_proxy_counted", "proxyline_source_proxy", "INSERT", "NEW TABLE AS proxyline_new",
		pgSourceCount(`EXISTS (SELECT 1 FROM proxyline_new)`,
			`SELECT n.source, count(*), count(p.addr), count(*) FILTER (WHERE p.class = 'alive'), max(n.last_seen)
			FROM proxyline_new n LEFT JOIN proxyline_proxy p ON p.addr = n.addr AND p.scheme = n.scheme GROUP BY n.source`)))
	add(pgFunc("proxyline_source_proxy_seen", "proxyline_source_proxy", "UPDATE", "NEW TABLE AS proxyline_new",
		pgSourceCount(`EXISTS (SELECT 1 FROM proxyline_new)`,
			`SELECT source, 0::bigint, 0::bigint, 0::bigint, max(last_seen) FROM proxyline_new GROUP BY source`)))
	add(pgFunc("proxyline_source_proxy_uncounted", "proxyline_source_proxy", "DELETE", "OLD TABLE AS proxyline_old",
		pgSourceCount(`EXISTS (SELECT 1 FROM proxyline_old)`,
			`SELECT o.source, -count(*), -count(p.addr), -count(*) FILTER (WHERE p.class = 'alive'), 0::bigint
			FROM proxyline_old o LEFT JOIN proxyline_proxy p ON p.addr = o.addr AND p.scheme = o.scheme GROUP BY o.source`)))
	return out
}

// Count returns the pool's statistics, from the counters.
func Count(ctx context.Context, db DB) (Stats, error) {
	s := Stats{ByClass: map[string]int64{}, ByProtocol: map[string]int64{}}
	err := eachPoolCount(ctx, db, func(class, protocol, _ string, n int64) {
		s.ByClass[class] += n
		s.Total += n
		if class == string(check.Alive) {
			s.Alive += n
			s.ByProtocol[protocol] += n
		}
	})
	if err != nil {
		return s, err
	}
	if s.History, err = historyRows(ctx, db); err != nil {
		return s, err
	}
	return s, nil
}

// Size counts the pool, from the counters: every current row by class, the live ones by protocol
// and anonymity.
func Size(ctx context.Context, db DB) (Sizes, error) {
	out := Sizes{ByClass: map[check.Class]int64{}}
	err := eachPoolCount(ctx, db, func(class, protocol, anon string, n int64) {
		out.ByClass[check.Class(class)] += n
		if class == string(check.Alive) {
			out.Live = append(out.Live, LiveSize{Protocol: protocol, Anonymity: check.Anonymity(anon), Proxies: n})
		}
	})
	if err != nil {
		return out, fmt.Errorf("pool size: %w", err)
	}
	return out, nil
}

// eachPoolCount calls fn with every (class, protocol, anonymity) that has current rows, in that
// order, and their number.
func eachPoolCount(ctx context.Context, db DB, fn func(class, protocol, anon string, n int64)) error {
	rows, err := db.Query(ctx, `SELECT class, protocol, anonymity, sum(proxies) FROM proxyline_pool_count
		GROUP BY class, protocol, anonymity HAVING sum(proxies) <> 0 ORDER BY class, protocol, anonymity`)
	if err != nil {
		return fmt.Errorf("count pool: %w", err)
	}
	for rows.Next() {
		var class, protocol, anon string
		var n int64
		if err := rows.Scan(&class, &protocol, &anon, &n); err != nil {
			rows.Close()
			return fmt.Errorf("count pool: %w", err)
		}
		fn(class, protocol, anon, n)
	}
	if err := closeRows(rows); err != nil {
		return fmt.Errorf("count pool: %w", err)
	}
	return nil
}

func historyRows(ctx context.Context, db DB) (int64, error) {
	rows, err := db.Query(ctx, `SELECT COALESCE(sum(checks), 0) FROM proxyline_history_count`)
	if err != nil {
		return 0, fmt.Errorf("count history: %w", err)
	}
	var n int64
	if rows.Next() {
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return 0, fmt.Errorf("count history: %w", err)
		}
	}
	if err := closeRows(rows); err != nil {
		return 0, fmt.Errorf("count history: %w", err)
	}
	return n, nil
}

// SourceYields returns every source's yield, best first (most live proxies), from the counters.
func SourceYields(ctx context.Context, db DB) ([]SourceYield, error) {
	rows, err := db.Query(ctx, `SELECT source, named, checked, alive, last_seen FROM proxyline_source_count
		WHERE named > 0 ORDER BY alive DESC, source`)
	if err != nil {
		return nil, fmt.Errorf("source yields: %w", err)
	}
	var out []SourceYield
	for rows.Next() {
		var y SourceYield
		var last int64
		if err := rows.Scan(&y.Source, &y.Candidates, &y.Checked, &y.Alive, &last); err != nil {
			rows.Close()
			return nil, fmt.Errorf("source yields: %w", err)
		}
		y.LastSeen = time.UnixMilli(last).UTC()
		out = append(out, y)
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("source yields: %w", err)
	}
	return out, nil
}
