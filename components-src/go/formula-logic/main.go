//go:build wasip1

// Command formula-logic is the logic component of the paper's evaluation
// app (a formula renderer): kind "render" evaluates the arithmetic formula
// in its input and replies with "FORMULA = VALUE" drawn as a greyscale PGM
// image (package render). A formula it cannot evaluate fails with 400,
// naming the problem. It keeps nothing between requests.
//
// Build (scripts/components/go.sh does this for every Go component):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -buildvcs=false -o testdata/formula-logic.wasm ./components-src/go/formula-logic
package main

import (
	tsubame "github.com/tsubame-rt/tsubame/abi/go"
	"github.com/tsubame-rt/tsubame/components-src/go/formula-logic/render"
)

func init() { tsubame.Handle("render", renderStep) }

func renderStep(c *tsubame.Ctx) tsubame.Outcome {
	img, err := render.Render(string(c.Input()))
	if err != nil {
		return c.Fail(400, err.Error())
	}
	return c.Reply(img)
}

func main() {} // a reactor: the host calls the SDK's exports, never main
