// Package buildcheck holds one test: every module committed in testdata/
// must be what scripts/components/LANG.sh builds from components-src/ today,
// byte for byte, and every committed module must come from some script. It
// is what keeps the committed .wasm files honest while tests need only Go.
//
// A script signals a missing toolchain by exiting with status 77 (the
// automake "skip" convention); the language is then skipped, unless
// TSUBAME_REQUIRE_TOOLCHAINS=1 (CI), which makes it a failure. Go is always
// present, so the Go components are always checked. The package has no code
// besides its test.
package buildcheck
