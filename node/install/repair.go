package install

import (
	"context"
	"errors"
	"time"

	"github.com/tsubame-rt/tsubame/lp"
	"github.com/tsubame-rt/tsubame/node/store"
)

// repairEvery is how often a node retries fetching, from its peers, the
// installed modules its store lost or holds corrupt.
const repairEvery = time.Second

// needRepair notes, at restore, a manifest entry whose module the store
// could not give back (missing, or bytes that no longer match the hash). A
// corrupt file is removed first, so a good copy can take its place. The
// caller holds no lock; restore runs before anything else touches h.
func (h *Manager) needRepair(e store.Entry, hash lp.Hash, err error) {
	if !errors.Is(err, store.ErrNotFound) {
		if derr := h.store.Delete(hash); derr != nil {
			h.log.Warn("cannot remove a corrupt stored module", "hash", hash.Short(), "err", derr)
		}
	}
	h.repairs = append(h.repairs, e)
}

// repair fetches each module in h.repairs from a peer that has it, stores,
// loads and installs it, until none is left or the node stops. The manifest
// entry is kept as it was (source, time, who ordered it): the node repairs
// what it held, it does not reinstall.
func (h *Manager) repair() {
	defer h.wg.Done()
	t := time.NewTicker(repairEvery)
	defer t.Stop()
	for len(h.repairs) > 0 {
		select {
		case <-h.ctx.Done():
			return
		case <-t.C:
		}
		left := h.repairs[:0]
		for _, e := range h.repairs {
			if !h.repairOne(e) {
				left = append(left, e)
			}
		}
		h.repairs = left
	}
}

// repairOne tries once; it reports whether e needs no more work (repaired,
// or superseded by a later install or removal).
func (h *Manager) repairOne(e store.Entry) bool {
	hash, _ := store.ParseHash(e.Hash) // checked by store.Manifest
	ctx, cancel := context.WithTimeout(h.ctx, installTimeout)
	defer cancel()
	b, from, err := h.fetch(ctx, hash, "", e.Name)
	if err != nil {
		h.log.Debug("repair: module not fetched yet", "component", e.Name, "hash", hash.Short(), "err", err)
		return false
	}
	mod, err := h.rt.Load(ctx, b)
	if err != nil {
		h.log.Error("repair: fetched module does not load", "component", e.Name, "hash", hash.Short(), "err", err)
		return false
	}
	if _, err := h.store.Put(b); err != nil {
		h.log.Warn("repair: cannot store the fetched module", "hash", hash.Short(), "err", err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if cur, ok := h.manifest[e.Name]; !ok || cur.Hash != e.Hash || cur.Removed {
		return true // changed since: the later order wins
	}
	h.eng.Install(e.Name, mod)
	h.vers.Track(hash)
	h.refresh()
	h.log.Info("component repaired: its stored module was missing or corrupt and was fetched again",
		"component", e.Name, "hash", hash.Short(), "fetched_from", from)
	return true
}
