//go:build wasip1

// Command formula-cache is the cache component of the paper's evaluation
// app (a formula renderer): kind "render" answers a formula's image from
// an LRU cache and, on a miss, calls formula-logic "render", stores the
// image and replies with it. Failures of formula-logic are forwarded with
// their code and never cached.
//
// The cache is the KV bucket "formulas" (ABI.md §10) when the node grants
// it, shared by every instance and, on a shared backend, every node: the
// paper's cache in shared memory. The key is the SHA-256 of the formula
// (formulas may be longer than a KV key), the value the image, kept for
// CacheTTL. Without the grant (or while the bucket's backend does not
// answer) it falls back to an LRU in the instance's linear memory: each
// instance has its own, so a request may miss on one instance what another
// holds. Either way the cache is only an optimisation: a miss costs a
// recompute, never a wrong answer. The bucket needs no journal (its
// operations are idempotent), so nodes declare it with journal = false.
//
// Build (scripts/components/go.sh does this for every Go component):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -buildvcs=false -o testdata/formula-cache.wasm ./components-src/go/formula-cache
package main

import (
	"container/list"
	"crypto/sha256"
	"errors"
	"time"

	tsubame "github.com/tsubame-rt/tsubame/abi/go"
)

// Bucket is the shared cache's bucket; CacheTTL how long an image stays.
const (
	Bucket   = "formulas"
	CacheTTL = 10 * time.Minute
)

var shared = tsubame.KV(Bucket)

// maxCacheBytes bounds the images one instance keeps: well under half the
// default 64 MiB memory limit, past which the host recycles the instance.
const maxCacheBytes = 4 << 20

func init() { tsubame.Handle("render", render) }

var cache = lru{max: maxCacheBytes, items: map[string]*list.Element{}}

// render runs once on a hit and twice on a miss: the second step, after
// formula-logic replied, stores the image (the key is the input, which the
// entry still holds, so the continuation is empty).
func render(c *tsubame.Ctx) tsubame.Outcome {
	key := sha256.Sum256(c.Input())
	if c.Calls() == 0 {
		img, err := shared.Get(key[:])
		if err == nil {
			return c.Reply(img)
		}
		if useLocal(err) {
			if img, ok := cache.get(c.Input()); ok {
				return c.Reply(img)
			}
		}
		return c.Call("formula-logic", "render", c.Input(), nil)
	}
	img, err := c.Child(0)
	if err != nil {
		return c.FailErr(err)
	}
	if err := shared.Set(key[:], img, CacheTTL); useLocal(err) {
		img = append([]byte(nil), img...) // the SDK's slice dies with the step
		cache.put(string(c.Input()), img)
	}
	return c.Reply(img)
}

// useLocal reports whether the shared cache failed in a way the instance's
// own LRU stands in for: no grant, or the backend down. A miss, or an image
// over the KV value limit, is not such a failure.
func useLocal(err error) bool {
	return errors.Is(err, tsubame.ErrNotGranted) || errors.Is(err, tsubame.ErrUnavailable)
}

// lru is a byte-bounded least-recently-used map from formula to image.
type lru struct {
	max, size int
	items     map[string]*list.Element
	order     list.List // front: most recently used
}

type item struct {
	key string
	img []byte
}

func (l *lru) get(key []byte) ([]byte, bool) {
	e, ok := l.items[string(key)] // no allocation for the lookup
	if !ok {
		return nil, false
	}
	l.order.MoveToFront(e)
	return e.Value.(*item).img, true
}

func (l *lru) put(key string, img []byte) {
	cost := len(key) + len(img)
	if cost > l.max {
		return
	}
	if e, ok := l.items[key]; ok { // another miss of the same formula stored it first
		l.order.MoveToFront(e)
		return
	}
	l.items[key] = l.order.PushFront(&item{key, img})
	l.size += cost
	for l.size > l.max {
		e := l.order.Back()
		it := e.Value.(*item)
		l.order.Remove(e)
		delete(l.items, it.key)
		l.size -= len(it.key) + len(it.img)
	}
}

func main() {} // a reactor: the host calls the SDK's exports, never main
