//go:build wasip1

// Command formula-cache is the cache component of the paper's evaluation
// app (a formula renderer): kind "render" answers a formula's image from
// an LRU cache and, on a miss, calls formula-logic "render", stores the
// image and replies with it. Failures of formula-logic are forwarded with
// their code and never cached.
//
// The cache lives in the instance's linear memory: each instance (a node
// runs up to one per worker, and recycles them) has its own, so a request
// may miss on one instance what another holds. That is allowed by the
// model because the cache is only ever an optimisation: a miss costs a
// recompute, never a wrong answer, and no request depends on which instance
// served an earlier one. A cache shared by every instance and node belongs
// in a distributed store (docs/evaluation.md).
//
// Build (scripts/components/go.sh does this for every Go component):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -buildvcs=false -o testdata/formula-cache.wasm ./components-src/go/formula-cache
package main

import (
	"container/list"

	tsubame "github.com/tsubame-rt/tsubame/abi/go"
)

// maxCacheBytes bounds the images one instance keeps: well under half the
// default 64 MiB memory limit, past which the host recycles the instance.
const maxCacheBytes = 4 << 20

func init() { tsubame.Handle("render", render) }

var cache = lru{max: maxCacheBytes, items: map[string]*list.Element{}}

// render runs once on a hit and twice on a miss: the second step, after
// formula-logic replied, stores the image (the key is the input, which the
// entry still holds, so the continuation is empty).
func render(c *tsubame.Ctx) tsubame.Outcome {
	if c.Calls() == 0 {
		if img, ok := cache.get(c.Input()); ok {
			return c.Reply(img)
		}
		return c.Call("formula-logic", "render", c.Input(), nil)
	}
	img, err := c.Child(0)
	if err != nil {
		return c.FailErr(err)
	}
	img = append([]byte(nil), img...) // the SDK's slice dies with the step
	cache.put(string(c.Input()), img)
	return c.Reply(img)
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
