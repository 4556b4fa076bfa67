package store

import (
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tsubame-rt/tsubame/lp"
)

func TestDiskAndMemory(t *testing.T) {
	for _, dir := range []string{"", t.TempDir()} {
		name := "disk"
		if dir == "" {
			name = "memory"
		}
		t.Run(name, func(t *testing.T) {
			s, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			wasm := []byte("\x00asm\x01\x00\x00\x00 module bytes")
			h, err := s.Put(wasm)
			if err != nil || h != lp.Hash(sha256.Sum256(wasm)) {
				t.Fatalf("Put: %s, %v", h.Short(), err)
			}
			if _, err := s.Put(wasm); err != nil {
				t.Fatalf("second Put: %v", err)
			}
			got, err := s.Get(h)
			if err != nil || string(got) != string(wasm) || !s.Has(h) {
				t.Fatalf("Get: %q, %v", got, err)
			}
			if hs, err := s.List(); err != nil || len(hs) != 1 || hs[0] != h {
				t.Fatalf("List: %v, %v", hs, err)
			}
			var other lp.Hash
			if _, err := s.Get(other); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Get of a missing module: %v, want ErrNotFound", err)
			}
			m, err := s.Manifest()
			if err != nil || len(m.Components) != 0 {
				t.Fatalf("empty manifest: %+v, %v", m, err)
			}
			at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			m.Components = []Entry{
				{Name: "zeta", Hash: h.String(), Source: "upload", InstalledAt: at},
				{Name: "alpha", Hash: h.String(), Source: "auto", Auto: true, By: "n1", InstalledAt: at},
			}
			if err := s.SaveManifest(m); err != nil {
				t.Fatal(err)
			}
			if dir != "" {
				// A reopened store reads the same things back.
				if s, err = Open(dir); err != nil {
					t.Fatal(err)
				}
			}
			m2, err := s.Manifest()
			if err != nil || len(m2.Components) != 2 || m2.Components[0].Name != "alpha" || !m2.Components[0].Auto ||
				!m2.Components[1].InstalledAt.Equal(at) {
				t.Fatalf("manifest read back: %+v, %v", m2, err)
			}
			if err := s.Delete(h); err != nil || s.Has(h) {
				t.Fatalf("Delete: %v, still there: %v", err, s.Has(h))
			}
			if err := s.Delete(h); err != nil {
				t.Fatalf("second Delete: %v", err)
			}
		})
	}
}

func TestDiskDetails(t *testing.T) {
	dir := t.TempDir()
	// A temporary file left by a crash is cleaned up on Open.
	if err := os.WriteFile(filepath.Join(dir, tmpPrefix+"manifest.json-123"), []byte("half"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 0 {
		t.Fatalf("after Open: %d files, want the stale temp file gone", len(ents))
	}
	h, err := s.Put([]byte("good bytes"))
	if err != nil {
		t.Fatal(err)
	}
	// A module file whose bytes do not match its name is refused.
	if err := os.WriteFile(filepath.Join(dir, h.String()+moduleExt), []byte("bit rot"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(h); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("Get of a corrupt file: %v, want a corruption error", err)
	}
	// A manifest this version does not read is an error, not an empty store.
	if err := os.WriteFile(filepath.Join(dir, manifestFile), []byte(`{"version": 9, "components": []}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "version 9") {
		t.Fatalf("Open with a newer manifest: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, manifestFile), []byte(`{"version": 1, "components": [{"name": "x", "hash": "zz"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), `component "x"`) {
		t.Fatalf("Open with a bad hash: %v", err)
	}
}
