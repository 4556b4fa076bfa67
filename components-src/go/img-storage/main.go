//go:build wasip1

// Command img-storage keeps the image service's originals in its private
// KV bucket (docs/images.md). Kinds:
//
//	put   input "NAME\n" + image bytes: stores a PNG or JPEG under NAME, once.
//	      A second put of the same bytes (a resent request) answers as the
//	      first did; other bytes under a taken name are refused (409):
//	      originals are immutable, so cached variants never go stale.
//	get   input NAME: the original's bytes (404 if there is none).
//	list  the originals, one "NAME FORMAT WIDTHxHEIGHT BYTES" line each.
//
// An original is one KV value (at most 1 MiB); a reply that large travels
// by reference (ABI.md §9), so only the step that reads it moves its bytes.
//
// Build (scripts/components/go.sh):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -buildvcs=false -o testdata/img-storage.wasm ./components-src/go/img-storage
package main

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"

	tsubame "github.com/tsubame-rt/tsubame/abi/go"
	"github.com/tsubame-rt/tsubame/components-src/go/img-convert/imaging"
	"github.com/tsubame-rt/tsubame/components-src/go/img-front/imgspec"
)

// store is the private bucket: "orig/NAME" holds an original, "index" the
// list of originals.
var store = tsubame.KV("")

func init() {
	tsubame.Handle("put", put)
	tsubame.Handle("get", get)
	tsubame.Handle("list", list)
}

func fail(c *tsubame.Ctx, code uint32, format string, a ...any) tsubame.Outcome {
	return c.Fail(code, fmt.Sprintf(format, a...))
}

func put(c *tsubame.Ctx) tsubame.Outcome {
	name, img, ok := bytes.Cut(c.Input(), []byte("\n"))
	if !ok {
		return fail(c, imgspec.BadRequest, "put: input is not NAME, a newline, then the image")
	}
	if err := imgspec.ValidName(string(name)); err != nil {
		return fail(c, imgspec.BadRequest, "%v", err)
	}
	switch {
	case len(img) == 0:
		return fail(c, imgspec.BadRequest, "the upload is empty: send a PNG or JPEG image as the body")
	case len(img) > imgspec.MaxUpload:
		return fail(c, imgspec.TooLarge, "image of %d bytes is over the limit of %d", len(img), imgspec.MaxUpload)
	}
	format, w, h, err := imaging.Sniff(img)
	if err != nil {
		return fail(c, imgspec.UnsupportedType, "%v", err)
	}
	if w*h > imgspec.MaxPixels {
		return fail(c, imgspec.TooLarge, "image of %dx%d pixels is over the limit of %d pixels", w, h, imgspec.MaxPixels)
	}
	key := []byte("orig/" + string(name))
	switch cur, err := store.SetIfAbsent(key, img, 0); {
	case err == nil:
	case errors.Is(err, tsubame.ErrMismatch) && bytes.Equal(cur, img):
		// The same bytes again: a resent upload. Answer as the first did.
	case errors.Is(err, tsubame.ErrMismatch):
		return fail(c, imgspec.Conflict, "an image named %q exists with other content; originals are immutable, upload under another name", name)
	default:
		return c.FailErr(err)
	}
	meta := fmt.Sprintf("%s %s %dx%d %d", name, format, w, h, len(img))
	if err := addToIndex(string(name), meta); err != nil {
		return c.FailErr(err)
	}
	return c.Reply([]byte(fmt.Sprintf("stored %s: %s, %dx%d, %d bytes\n", name, format, w, h, len(img))))
}

// addToIndex adds the meta line of name to the index, once, with
// compare-and-set so concurrent uploads lose nobody's line.
func addToIndex(name, meta string) error {
	key := []byte("index")
	cur, err := store.Get(key)
	found := err == nil
	if err != nil && !errors.Is(err, tsubame.ErrNotFound) {
		return err
	}
	for range 32 {
		for _, line := range strings.Split(string(cur), "\n") {
			if n, _, _ := strings.Cut(line, " "); n == name {
				return nil
			}
		}
		next := append(append([]byte(nil), cur...), meta+"\n"...)
		if found {
			cur, found, err = store.CompareAndSet(key, cur, next, 0)
		} else {
			cur, err = store.SetIfAbsent(key, next, 0)
			found = err != nil
		}
		if !errors.Is(err, tsubame.ErrMismatch) {
			return err
		}
	}
	return fmt.Errorf("index: too many concurrent updates")
}

func get(c *tsubame.Ctx) tsubame.Outcome {
	name := string(c.Input())
	if err := imgspec.ValidName(name); err != nil {
		return fail(c, imgspec.BadRequest, "%v", err)
	}
	img, err := store.Get([]byte("orig/" + name))
	if errors.Is(err, tsubame.ErrNotFound) {
		return fail(c, imgspec.NotFound, "no image named %q", name)
	}
	if err != nil {
		return c.FailErr(err)
	}
	return c.Reply(img)
}

func list(c *tsubame.Ctx) tsubame.Outcome {
	cur, err := store.Get([]byte("index"))
	if err != nil && !errors.Is(err, tsubame.ErrNotFound) {
		return c.FailErr(err)
	}
	lines := strings.Split(strings.TrimSpace(string(cur)), "\n")
	sort.Strings(lines)
	return c.Reply([]byte(strings.TrimSpace(strings.Join(lines, "\n"))))
}

func main() {}
