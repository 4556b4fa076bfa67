//go:build wasip1

// Command img-convert renders a variant of an original (docs/images.md):
// kind "convert", input a variant "NAME/WxH.FMT" (imgspec). It asks
// img-storage for the original, decodes the PNG or JPEG, scales it to fit
// W x H with the Catmull-Rom filter (golang.org/x/image/draw) and encodes it
// as FMT. The original arrives by reference and is fetched by this step's
// node only, the one step that reads it.
//
// Build (scripts/components/go.sh):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -buildvcs=false -o testdata/img-convert.wasm ./components-src/go/img-convert
package main

import (
	tsubame "github.com/tsubame-rt/tsubame/abi/go"
	"github.com/tsubame-rt/tsubame/components-src/go/img-convert/imaging"
	"github.com/tsubame-rt/tsubame/components-src/go/img-front/imgspec"
)

func init() { tsubame.HandleSeq("convert", convert) }

func convert(c *tsubame.Seq) ([]byte, error) {
	v, err := imgspec.ParseVariant(string(c.Input()))
	if err != nil {
		return nil, &tsubame.Error{Code: imgspec.BadRequest, Msg: err.Error()}
	}
	orig, err := c.Call("img-storage", "get", []byte(v.Name))
	if err != nil {
		return nil, err
	}
	out, err := imaging.Convert(orig, v.W, v.H, v.Fmt, imgspec.JPEGQuality, imgspec.MaxPixels)
	if err != nil {
		return nil, &tsubame.Error{Code: imgspec.UnsupportedType, Msg: "convert " + v.String() + ": " + err.Error()}
	}
	return out, nil
}

func main() {}
