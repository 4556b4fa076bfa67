// Package store is a node's content-addressed module store: module bytes
// kept under their SHA-256, and a small manifest saying which component name
// runs which module, so that a restarted node holds what it held.
//
// On disk (Open with a directory) modules live in DIR/<sha256>.wasm and the
// manifest in DIR/manifest.json. Every write goes to a temporary file that
// is synced and then renamed into place, so a crash leaves either the old
// file or the new one, never a torn one; a module read back is checked
// against its name. With no directory the store keeps everything in memory
// for the life of the process.
//
// The store never validates, compiles or runs a module and never talks to
// other nodes: it only keeps bytes and the manifest.
package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tsubame-rt/tsubame/lp"
)

// ErrNotFound: the store has no module with that hash. ErrCorrupt: it has
// a file under that hash whose bytes no longer hash to it.
var (
	ErrNotFound = errors.New("store: module not found")
	ErrCorrupt  = errors.New("corrupt")
)

const (
	manifestFile = "manifest.json"
	tmpPrefix    = ".tmp-"
	moduleExt    = ".wasm"
	// manifestVersion is the manifest format; a store refuses a newer one
	// rather than misread it.
	manifestVersion = 1
)

// Store keeps modules by hash and the manifest. It is safe for concurrent
// use.
type Store struct {
	dir string // "" keeps everything in memory

	mu       sync.Mutex
	mem      map[lp.Hash][]byte
	manifest Manifest // the in-memory store's manifest
}

// Entry is one component in the manifest: the module it runs and how it
// got there.
type Entry struct {
	Name string `json:"name"`
	// Hash is the hex SHA-256 of the module.
	Hash string `json:"hash"`
	// Source is how it was installed: "upload" (the admin API), "peer" (an
	// install order from another member) or "auto" (auto-grow).
	Source string `json:"source"`
	// Auto marks a component auto-grow installed; By names the member that
	// decided it.
	Auto bool   `json:"auto,omitempty"`
	By   string `json:"by,omitempty"`
	// InstalledAt is when it was installed.
	InstalledAt time.Time `json:"installed_at"`
	// Removed records the removal of a component that the node's config
	// file also lists, so that a restart does not bring it back.
	Removed bool `json:"removed,omitempty"`
	// ConfigHash is the hex hash of the module the config file listed
	// under Name when this entry was written ("" if none). A config file
	// changed since then wins over the entry.
	ConfigHash string `json:"config_hash,omitempty"`
}

// Manifest lists the components installed at run time, by name.
type Manifest struct {
	Version    int     `json:"version"`
	Components []Entry `json:"components"`
}

// Open opens (creating it if needed) the store in dir, removing temporary
// files a crash may have left. dir "" makes an in-memory store.
func Open(dir string) (*Store, error) {
	s := &Store{dir: dir, mem: map[lp.Hash][]byte{}, manifest: Manifest{Version: manifestVersion}}
	if dir == "" {
		return s, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), tmpPrefix) {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	if _, err := s.Manifest(); err != nil {
		return nil, err
	}
	return s, nil
}

// Dir returns the store's directory ("" in memory).
func (s *Store) Dir() string { return s.dir }

func (s *Store) path(h lp.Hash) string { return filepath.Join(s.dir, h.String()+moduleExt) }

// Put stores wasm under its SHA-256 and returns the hash. Putting bytes the
// store already has changes nothing; a corrupt file under that hash is
// replaced.
func (s *Store) Put(wasm []byte) (lp.Hash, error) {
	h := lp.Hash(sha256.Sum256(wasm))
	if s.dir == "" {
		s.mu.Lock()
		if _, ok := s.mem[h]; !ok {
			s.mem[h] = bytes.Clone(wasm)
		}
		s.mu.Unlock()
		return h, nil
	}
	if _, err := s.Get(h); err == nil {
		return h, nil
	}
	if err := writeAtomic(s.dir, h.String()+moduleExt, wasm); err != nil {
		return h, fmt.Errorf("store: put %s: %w", h.Short(), err)
	}
	return h, nil
}

// Get returns the module with hash h, checked against h. A file whose bytes
// do not match its name (disk corruption, a hand edit) is reported, not
// returned.
func (s *Store) Get(h lp.Hash) ([]byte, error) {
	if s.dir == "" {
		s.mu.Lock()
		b, ok := s.mem[h]
		s.mu.Unlock()
		if !ok {
			return nil, ErrNotFound
		}
		return b, nil
	}
	b, err := os.ReadFile(s.path(h))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if got := lp.Hash(sha256.Sum256(b)); got != h {
		return nil, fmt.Errorf("store: %s holds a module whose SHA-256 is %s: %w", s.path(h), got.Short(), ErrCorrupt)
	}
	return b, nil
}

// Has reports whether the store has the module with hash h.
func (s *Store) Has(h lp.Hash) bool {
	if s.dir == "" {
		s.mu.Lock()
		defer s.mu.Unlock()
		_, ok := s.mem[h]
		return ok
	}
	_, err := os.Stat(s.path(h))
	return err == nil
}

// Delete removes the module with hash h; deleting a missing one is not an
// error.
func (s *Store) Delete(h lp.Hash) error {
	if s.dir == "" {
		s.mu.Lock()
		delete(s.mem, h)
		s.mu.Unlock()
		return nil
	}
	if err := os.Remove(s.path(h)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

// List returns the hashes of every stored module, sorted.
func (s *Store) List() ([]lp.Hash, error) {
	var out []lp.Hash
	if s.dir == "" {
		s.mu.Lock()
		for h := range s.mem {
			out = append(out, h)
		}
		s.mu.Unlock()
	} else {
		ents, err := os.ReadDir(s.dir)
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		for _, e := range ents {
			name, ok := strings.CutSuffix(e.Name(), moduleExt)
			if !ok {
				continue
			}
			if h, err := ParseHash(name); err == nil {
				out = append(out, h)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return bytes.Compare(out[i][:], out[j][:]) < 0 })
	return out, nil
}

// Manifest reads the manifest; an absent one is empty.
func (s *Store) Manifest() (Manifest, error) {
	if s.dir == "" {
		s.mu.Lock()
		defer s.mu.Unlock()
		m := s.manifest
		m.Components = append([]Entry(nil), m.Components...)
		return m, nil
	}
	b, err := os.ReadFile(filepath.Join(s.dir, manifestFile))
	if errors.Is(err, fs.ErrNotExist) {
		return Manifest{Version: manifestVersion}, nil
	}
	if err != nil {
		return Manifest{}, fmt.Errorf("store: %w", err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return Manifest{}, fmt.Errorf("store: %s: %w", filepath.Join(s.dir, manifestFile), err)
	}
	if m.Version != manifestVersion {
		return Manifest{}, fmt.Errorf("store: %s: manifest version %d, this node reads %d", filepath.Join(s.dir, manifestFile), m.Version, manifestVersion)
	}
	for _, e := range m.Components {
		if _, err := ParseHash(e.Hash); err != nil && !e.Removed {
			return Manifest{}, fmt.Errorf("store: %s: component %q: %w", filepath.Join(s.dir, manifestFile), e.Name, err)
		}
	}
	return m, nil
}

// SaveManifest replaces the manifest atomically. Entries are kept sorted by
// name.
func (s *Store) SaveManifest(m Manifest) error {
	m.Version = manifestVersion
	m.Components = append([]Entry(nil), m.Components...)
	sort.Slice(m.Components, func(i, j int) bool { return m.Components[i].Name < m.Components[j].Name })
	if s.dir == "" {
		s.mu.Lock()
		s.manifest = m
		s.mu.Unlock()
		return nil
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if err := writeAtomic(s.dir, manifestFile, append(b, '\n')); err != nil {
		return fmt.Errorf("store: save manifest: %w", err)
	}
	return nil
}

// ParseHash reads a hex SHA-256.
func ParseHash(s string) (lp.Hash, error) {
	var h lp.Hash
	if len(s) != 2*len(h) {
		return h, fmt.Errorf("hash %q is not 64 hex digits", s)
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("hash %q: %w", s, err)
	}
	return h, nil
}

// writeAtomic writes data to dir/name through a synced temporary file and a
// rename, then syncs the directory so the rename itself survives a crash.
func writeAtomic(dir, name string, data []byte) (err error) {
	f, err := os.CreateTemp(dir, tmpPrefix+name+"-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), filepath.Join(dir, name)); err != nil {
		return err
	}
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync() // best effort: not every file system syncs directories
		d.Close()
	}
	return nil
}
