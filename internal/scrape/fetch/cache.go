package fetch

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Entry is what the cache keeps of a source: the validators of its last body and the
// candidates extracted from it (proxy URLs, credentials included: hence mode 0600).
type Entry struct {
	URL          string    `json:"url"` // masked
	ETag         string    `json:"etag,omitempty"`
	LastModified string    `json:"last_modified,omitempty"`
	Candidates   []string  `json:"candidates"`
	Stored       time.Time `json:"stored"`
}

// Cache is a directory of one small JSON file per source (named by a hash of the URL and the
// basic-auth user; the password is never stored), mode 0600 in a 0700 directory. A file that
// cannot be read is a miss, never an error: the source is then fetched in full.
type Cache struct {
	Dir string
}

func (c *Cache) path(req Request) string {
	h := sha256.Sum256([]byte(req.URL + "\x00" + req.User))
	return filepath.Join(c.Dir, hex.EncodeToString(h[:12])+".json")
}

// Load returns the entry of req, or nil.
func (c *Cache) Load(req Request) *Entry {
	b, err := os.ReadFile(c.path(req))
	if err != nil {
		return nil
	}
	var e Entry
	if json.Unmarshal(b, &e) != nil || e.ETag == "" && e.LastModified == "" {
		return nil
	}
	return &e
}

// Store keeps e for req, atomically (temporary file, then rename). Only responses with a
// validator are worth keeping.
func (c *Cache) Store(req Request, e Entry) error {
	if e.ETag == "" && e.LastModified == "" {
		return nil
	}
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	e.URL = Mask(req.URL)
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	f, err := os.CreateTemp(c.Dir, ".entry-*.tmp")
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	defer os.Remove(f.Name()) // fails harmlessly after the rename
	if _, err = f.Write(b); err == nil {
		err = f.Chmod(0o600)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), c.path(req))
	}
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	return nil
}
