// Package tsubame holds what the tsubame binary carries inside it: the demo
// components, embedded from testdata/ so `tsubame demo` needs no files.
// The runtime itself lives in the sub-packages; this package never runs
// anything.
package tsubame

import _ "embed"

// The demo's components (components-src/go/hello and greet): hello's kind
// "say" calls greet's kind "greet" and adds "!".
var (
	//go:embed testdata/hello.wasm
	DemoHello []byte
	//go:embed testdata/greet.wasm
	DemoGreet []byte
)

// The image service's components (components-src/go/img-*, docs/images.md).
var (
	//go:embed testdata/img-front.wasm
	ImgFront []byte
	//go:embed testdata/img-cache.wasm
	ImgCache []byte
	//go:embed testdata/img-convert.wasm
	ImgConvert []byte
	//go:embed testdata/img-storage.wasm
	ImgStorage []byte
)
