// Package as carries the AssemblyScript SDK inside Go programs: `tsubame new
// --lang as` vendors it into a new component, with the compiler pin. The
// TypeScript file is the SDK; this package only embeds it and is never part
// of a component.
package as

import _ "embed"

// Lib is assembly/tsubame.ts. PackageJSON and PackageLock pin the
// AssemblyScript compiler (an exact version, and its lockfile).
var (
	//go:embed assembly/tsubame.ts
	Lib []byte
	//go:embed package.json
	PackageJSON []byte
	//go:embed package-lock.json
	PackageLock []byte
)
