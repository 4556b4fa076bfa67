package tsubame

import _ "embed"

// The paper's evaluation app (components-src/go/formula-cache and
// formula-logic), carried so `tsubame bench paper-*` needs no files:
// formula-cache's kind "render" answers from its cache or calls
// formula-logic's "render", which draws the formula as an image.
var (
	//go:embed testdata/formula-cache.wasm
	FormulaCache []byte
	//go:embed testdata/formula-logic.wasm
	FormulaLogic []byte
)
