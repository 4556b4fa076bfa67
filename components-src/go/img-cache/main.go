//go:build wasip1

// Command img-cache answers variants of the image service from its private
// KV bucket (docs/images.md): kind "get", input a variant "NAME/WxH.FMT"
// (imgspec). On a miss it calls img-convert, keeps the result and replies
// with it. Originals are immutable (img-storage refuses a second, different
// upload under a name), so a cached variant never goes stale; a failed
// conversion is never cached.
//
// Build (scripts/components/go.sh):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -buildvcs=false -o testdata/img-cache.wasm ./components-src/go/img-cache
package main

import (
	"errors"

	tsubame "github.com/tsubame-rt/tsubame/abi/go"
	"github.com/tsubame-rt/tsubame/components-src/go/img-front/imgspec"
)

func init() { tsubame.HandleSeq("get", get) }

// variants is the private bucket, keyed by variant.
var variants = tsubame.KV("")

func get(c *tsubame.Seq) ([]byte, error) {
	v, err := imgspec.ParseVariant(string(c.Input()))
	if err != nil {
		return nil, &tsubame.Error{Code: imgspec.BadRequest, Msg: err.Error()}
	}
	key := []byte(v.String())
	switch img, err := variants.Get(key); {
	case err == nil:
		return img, nil
	case !errors.Is(err, tsubame.ErrNotFound):
		return nil, err
	}
	img, err := c.Call("img-convert", "convert", key)
	if err != nil {
		return nil, err
	}
	if len(img) <= imgspec.MaxUpload {
		if err := variants.Set(key, img, 0); err != nil {
			tsubame.Log(tsubame.LogWarn, "img-cache: keep "+string(key)+": "+err.Error())
		}
	}
	return img, nil
}

func main() {}
