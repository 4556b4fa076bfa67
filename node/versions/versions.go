// Package versions keeps the module versions an LP may still resume in.
//
// The version rule (abi/ABI.md §7): an entry resumes in the module version
// that saved its continuation. A node keeps a version that is no longer
// current loaded, and in its store, while
//   - an LP in its run queue has an unfinished entry saved by it, or
//   - less than keep_old has passed since a step here last saved a
//     continuation in it, or since it stopped being current, or
//   - the deadline of an LP that saved a continuation in it here has not
//     passed (capped at MaxKeepForDeadline),
//
// and drops it at the first collection after none holds. An entry that
// resumes in a version the node lacks fetches it from a peer first (that is
// node/install's); if no live member has it any more the entry fails with
// abi.CodeVersionGone.
//
// A Keeper only remembers and decides. It never loads, drops or fetches a
// module itself, and knows nothing of the network.
package versions

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tsubame-rt/tsubame/lp"
)

// MaxKeepForDeadline caps how far an LP's deadline can keep a version.
const MaxKeepForDeadline = time.Hour

// Keeper tracks the module versions a node loaded and how long each must be
// kept. It is safe for concurrent use; Saved is on every call step's path.
type Keeper struct {
	keepOld time.Duration
	until   sync.Map // lp.Hash -> *atomic.Int64: keep until (Unix ns)

	mu     sync.Mutex
	loaded map[lp.Hash]struct{}
}

// New returns a Keeper that keeps a version keepOld past its last use.
func New(keepOld time.Duration) *Keeper {
	return &Keeper{keepOld: keepOld, loaded: map[lp.Hash]struct{}{}}
}

// Track records that h is loaded in the runtime.
func (k *Keeper) Track(h lp.Hash) {
	k.mu.Lock()
	k.loaded[h] = struct{}{}
	k.mu.Unlock()
}

// KeepUntil makes sure h is kept at least until the Unix time until (ns): a
// lock-free load and, rarely, a CAS.
func (k *Keeper) KeepUntil(h lp.Hash, until int64) {
	x, ok := k.until.Load(h)
	if !ok {
		x, _ = k.until.LoadOrStore(h, new(atomic.Int64))
	}
	u := x.(*atomic.Int64)
	for {
		cur := u.Load()
		if cur >= until || u.CompareAndSwap(cur, until) {
			return
		}
	}
}

// Retire starts the keep_old clock of h at now: it stopped being current,
// or was stored for peers to fetch.
func (k *Keeper) Retire(h lp.Hash, now time.Time) {
	k.KeepUntil(h, now.Add(k.keepOld).UnixNano())
}

// Saved records that a step of an LP with deadline (Unix ns, 0: none) saved
// a continuation in h at now.
func (k *Keeper) Saved(h lp.Hash, deadline int64, now time.Time) {
	until := now.Add(k.keepOld).UnixNano()
	if deadline > until {
		until = min(deadline, now.Add(MaxKeepForDeadline).UnixNano())
	}
	k.KeepUntil(h, until)
}

// Until is when h may go (Unix ns); 0 if its clock never started.
func (k *Keeper) Until(h lp.Hash) int64 {
	if x, ok := k.until.Load(h); ok {
		return x.(*atomic.Int64).Load()
	}
	return 0
}

// Forget drops what is known of h, once it is dropped.
func (k *Keeper) Forget(h lp.Hash) {
	k.until.Delete(h)
	k.mu.Lock()
	delete(k.loaded, h)
	k.mu.Unlock()
}

// Loaded lists the versions Track recorded and Forget did not drop.
func (k *Keeper) Loaded() []lp.Hash {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]lp.Hash, 0, len(k.loaded))
	for h := range k.loaded {
		out = append(out, h)
	}
	return out
}

// Collect applies the rule to stored (the versions in the store) and the
// loaded ones at now, and returns those to drop: neither pinned (current,
// or named by the manifest) nor needed by a queued LP (refs) nor within
// their keep time. A version seen for the first time (left from a previous
// run, or loaded from a file) has its clock started instead. The caller
// drops each from its runtime and store, then calls Forget.
func (k *Keeper) Collect(now time.Time, stored []lp.Hash, pinned map[lp.Hash]bool, refs map[lp.Hash]int) []lp.Hash {
	var drop []lp.Hash
	cands := append(stored, k.Loaded()...)
	for i, h := range cands {
		if slices.Contains(cands[:i], h) || pinned[h] || refs[h] > 0 {
			continue
		}
		until := k.Until(h)
		if until == 0 {
			k.Retire(h, now)
			continue
		}
		if now.UnixNano() >= until {
			drop = append(drop, h)
		}
	}
	return drop
}
