package wasmhost

import (
	"errors"
	"fmt"

	"github.com/tsubame-rt/tsubame/abi"
)

// StepError is a failure the host detected while running a step: a trap, a
// timeout, a broken ABI rule, a limit. Code is one of the abi.Code* values
// and is what the entry fails with; Err says what happened.
type StepError struct {
	Component string
	Code      uint32
	Err       error
}

func (e *StepError) Error() string {
	return fmt.Sprintf("component %s: %s: %v", e.Component, codeName(e.Code), e.Err)
}

func (e *StepError) Unwrap() error { return e.Err }

// StepCode is the failure code the entry gets, for callers that only know
// the interface{ StepCode() uint32 }.
func (e *StepError) StepCode() uint32 { return e.Code }

func codeName(code uint32) string {
	if n := abi.CodeName(code); n != "" {
		return n
	}
	return fmt.Sprintf("code %d", code)
}

// Rules a module can break at load time: ModuleError.Rule is one of these.
const (
	// RuleCompile: the bytes are not a WebAssembly module wazero can compile
	// (bad magic, malformed sections, a memory over the page limit, ...).
	RuleCompile = "compile"
	// RuleMemory: the module's memory starts larger than the page limit.
	RuleMemory = "memory"
	// RuleExports: a required export (memory, tsubame_abi_version,
	// tsubame_step) is missing or has the wrong type, or _initialize has one.
	RuleExports = "exports"
	// RuleImports: an import from a module other than tsubame and
	// wasi_snapshot_preview1, an unknown function, or a wrong signature.
	RuleImports = "imports"
	// RuleInstantiate: the module compiled but could not be instantiated
	// (a trap in _initialize or a start function, a bad data segment, ...).
	RuleInstantiate = "instantiate"
	// RuleVersion: tsubame_abi_version did not return abi.Version.
	RuleVersion = "abi version"
)

// ModuleError is a module refused at load time, naming the rule it broke.
type ModuleError struct {
	Rule string
	Err  error
}

func (e *ModuleError) Error() string {
	return fmt.Sprintf("wasmhost: module refused (%s): %v", e.Rule, e.Err)
}

func (e *ModuleError) Unwrap() error { return e.Err }

// ErrClosed is returned by Step on a module that was dropped or whose
// runtime was closed. The step did not run.
var ErrClosed = errors.New("wasmhost: module closed")
