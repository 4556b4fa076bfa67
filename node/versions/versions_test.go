package versions

import (
	"slices"
	"testing"
	"time"

	"github.com/tsubame-rt/tsubame/lp"
)

func TestCollectFollowsTheRule(t *testing.T) {
	now := time.Unix(1000, 0)
	k := New(time.Minute)
	cur, old, queued, saved, stray := lp.Hash{1}, lp.Hash{2}, lp.Hash{3}, lp.Hash{4}, lp.Hash{5}
	for _, h := range []lp.Hash{cur, old, queued, saved} {
		k.Track(h)
	}
	k.Retire(old, now)
	k.Retire(queued, now)
	k.Saved(saved, now.Add(2*time.Hour).UnixNano(), now) // deadline past keep_old, capped at an hour
	pinned := map[lp.Hash]bool{cur: true}
	refs := map[lp.Hash]int{queued: 1}

	if d := k.Collect(now.Add(30*time.Second), []lp.Hash{stray}, pinned, refs); len(d) != 0 {
		t.Fatalf("within keep_old: dropped %v", d)
	}
	if k.Until(stray) == 0 {
		t.Error("a stored version seen for the first time did not get its clock started")
	}
	d := k.Collect(now.Add(2*time.Minute), []lp.Hash{stray}, pinned, refs)
	slices.SortFunc(d, func(a, b lp.Hash) int { return int(a[0]) - int(b[0]) })
	if !slices.Equal(d, []lp.Hash{old, stray}) {
		t.Errorf("past keep_old: dropped %v, want old and stray (current pinned, queued referenced, saved kept by its deadline)", d)
	}
	if d := k.Collect(now.Add(61*time.Minute), nil, pinned, refs); !slices.Contains(d, saved) {
		t.Errorf("past the deadline cap: dropped %v, want saved among them", d)
	}
	k.Forget(old)
	if slices.Contains(k.Loaded(), old) || k.Until(old) != 0 {
		t.Error("Forget left old behind")
	}
}
