package wasmhost

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/tsubame-rt/tsubame/abi"
	"github.com/tsubame-rt/tsubame/lp"
)

// Runtime is one wazero runtime and the modules loaded into it. It is safe
// for concurrent use.
type Runtime struct {
	cfg      Config
	wz       wazero.Runtime
	cache    wazero.CompilationCache
	wasiDefs map[string]api.FunctionDefinition

	mu      sync.RWMutex // Module is on every resumed step's path
	mods    map[lp.Hash]*Module
	loading map[lp.Hash]*loadCall
	closed  bool

	logs logBudgets

	// bg counts background instantiations (replacements of retired
	// instances); Close waits for them.
	bg sync.WaitGroup
}

// loadCall lets concurrent Loads of the same bytes share one compilation.
type loadCall struct {
	done chan struct{}
	m    *Module
	err  error
}

// New starts a runtime: the wazero compiler with close-on-context-done (so a
// guest that spins forever can be stopped), the compilation cache, WASI, and
// the "tsubame" host module.
func New(ctx context.Context, c Config) (*Runtime, error) {
	c = c.resolved()
	var cache wazero.CompilationCache
	if c.cacheDir != "" {
		if n, err := removeTemp(c.cacheDir); err != nil {
			c.logger.Warn("wasmhost: remove unfinished compiled-cache files", "dir", c.cacheDir, "err", err)
		} else if n > 0 {
			c.logger.Info("wasmhost: removed unfinished compiled-cache files left by a crash", "dir", c.cacheDir, "files", n)
		}
		var err error
		if cache, err = wazero.NewCompilationCacheWithDir(c.cacheDir); err != nil {
			return nil, fmt.Errorf("wasmhost: compilation cache in %s: %w", c.cacheDir, err)
		}
	} else {
		cache = wazero.NewCompilationCache()
	}
	// NewRuntimeConfig picks the compiler wherever wazero supports it (amd64,
	// arm64) and the interpreter elsewhere, so the host still runs there.
	rc := wazero.NewRuntimeConfig().
		WithCloseOnContextDone(true).
		// Not the configured limit: wazero refuses a grow past a memory's
		// maximum without asking the allocator, so the limit is enforced by
		// linearMemory, which then knows a grow was refused (see memory.go).
		WithMemoryLimitPages(65536).
		WithCompilationCache(cache)
	wz := wazero.NewRuntimeWithConfig(ctx, rc)
	r := &Runtime{cfg: c, wz: wz, cache: cache, mods: map[lp.Hash]*Module{}, loading: map[lp.Hash]*loadCall{}}
	r.logs.limits = c.logLimits
	fail := func(err error) (*Runtime, error) {
		_ = wz.Close(ctx)
		_ = cache.Close(ctx)
		return nil, err
	}
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, wz); err != nil {
		return fail(fmt.Errorf("wasmhost: instantiate wasi: %w", err))
	}
	r.wasiDefs = wz.Module(wasi_snapshot_preview1.ModuleName).ExportedFunctionDefinitions()
	if err := instantiateHost(ctx, wz); err != nil {
		return fail(fmt.Errorf("wasmhost: instantiate host module: %w", err))
	}
	return r, nil
}

// Close drops every module and stops the runtime. Steps still running are
// stopped.
func (r *Runtime) Close(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	mods := r.mods
	r.mods = map[lp.Hash]*Module{}
	r.mu.Unlock()
	for _, m := range mods {
		m.close(ctx)
	}
	r.bg.Wait()
	err := r.wz.Close(ctx)
	if cerr := r.cache.Close(ctx); err == nil {
		err = cerr
	}
	return err
}

// Load validates and compiles a module and keeps it, keyed by the SHA-256
// of wasm. Loading the same bytes again returns the same *Module. A module
// that breaks a rule of ABI.md is refused with a *ModuleError.
func (r *Runtime) Load(ctx context.Context, wasm []byte) (*Module, error) {
	h := lp.Hash(sha256.Sum256(wasm))
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, ErrClosed
	}
	if m := r.mods[h]; m != nil {
		r.mu.Unlock()
		return m, nil
	}
	if c := r.loading[h]; c != nil {
		r.mu.Unlock()
		select {
		case <-c.done:
			return c.m, c.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	c := &loadCall{done: make(chan struct{})}
	r.loading[h] = c
	r.mu.Unlock()

	c.m, c.err = r.load(ctx, h, wasm)
	r.mu.Lock()
	delete(r.loading, h)
	if c.err == nil {
		if r.closed {
			c.m.close(ctx)
			c.m, c.err = nil, ErrClosed
		} else {
			r.mods[h] = c.m
		}
	}
	r.mu.Unlock()
	close(c.done)
	return c.m, c.err
}

// Validate applies every load-time rule to wasm without keeping the module.
func (r *Runtime) Validate(ctx context.Context, wasm []byte) error {
	h := lp.Hash(sha256.Sum256(wasm))
	if r.Module(h) != nil {
		return nil
	}
	m, err := r.load(ctx, h, wasm)
	if err != nil {
		return err
	}
	m.close(ctx)
	return nil
}

// Module returns the loaded module with hash h, or nil.
func (r *Runtime) Module(h lp.Hash) *Module {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.mods[h]
}

// Drop unloads the module with hash h. Steps running in it finish; later
// Steps on it return ErrClosed. Dropping a module that is not loaded does
// nothing.
func (r *Runtime) Drop(ctx context.Context, h lp.Hash) error {
	r.mu.Lock()
	m := r.mods[h]
	delete(r.mods, h)
	r.mu.Unlock()
	if m != nil {
		m.close(ctx)
	}
	return nil
}

var wasmMagic = []byte("\x00asm")

// load compiles wasm, checks it against ABI.md §2, and instantiates it once
// to ask its ABI version; that instance seeds the pool.
func (r *Runtime) load(ctx context.Context, h lp.Hash, wasm []byte) (*Module, error) {
	if !bytes.HasPrefix(wasm, wasmMagic) {
		return nil, &ModuleError{Rule: RuleCompile, Err: errors.New("not a WebAssembly module (no \\0asm magic)")}
	}
	compiled, err := r.wz.CompileModule(ctx, wasm)
	if err != nil && r.cfg.cacheDir != "" && strings.Contains(err.Error(), "compilationcache:") {
		// A cache file torn by a crash (or a bad disk) must not keep a
		// module, or the node, from starting: the cache is only a cache.
		r.cfg.logger.Warn("wasmhost: compiled-module cache entry unreadable; clearing the cache and compiling again",
			"dir", r.cfg.cacheDir, "err", err)
		if cerr := clearCache(r.cfg.cacheDir); cerr != nil {
			r.cfg.logger.Warn("wasmhost: clear the compiled-module cache", "err", cerr)
		}
		compiled, err = r.wz.CompileModule(ctx, wasm)
	}
	if err != nil {
		return nil, &ModuleError{Rule: RuleCompile, Err: err}
	}
	if err := r.checkMemory(compiled); err != nil {
		_ = compiled.Close(ctx)
		return nil, &ModuleError{Rule: RuleMemory, Err: err}
	}
	if err := checkExports(compiled); err != nil {
		_ = compiled.Close(ctx)
		return nil, &ModuleError{Rule: RuleExports, Err: err}
	}
	if err := r.checkImports(compiled); err != nil {
		_ = compiled.Close(ctx)
		return nil, &ModuleError{Rule: RuleImports, Err: err}
	}
	_, hasInit := compiled.ExportedFunctions()[abi.ExportInitialize]
	m := newModule(r, h, len(wasm), compiled, hasInit)
	in, err := m.newInstance(ctx)
	if err != nil {
		m.close(ctx)
		return nil, &ModuleError{Rule: RuleInstantiate, Err: err}
	}
	if err := in.checkVersion(ctx, r.cfg.stepTimeout); err != nil {
		in.close()
		m.close(ctx)
		return nil, &ModuleError{Rule: RuleVersion, Err: err}
	}
	m.seed(in)
	return m, nil
}

// checkMemory refuses a memory whose minimum is over the page limit (the
// instance could never be made).
func (r *Runtime) checkMemory(c wazero.CompiledModule) error {
	for name, def := range c.ExportedMemories() {
		if def.Min() > r.cfg.memoryLimitPages {
			return fmt.Errorf("memory %q starts at %d pages, over the limit of %d", name, def.Min(), r.cfg.memoryLimitPages)
		}
	}
	return nil
}

func checkExports(c wazero.CompiledModule) error {
	if _, ok := c.ExportedMemories()[abi.ExportMemory]; !ok {
		return fmt.Errorf("no memory exported as %q", abi.ExportMemory)
	}
	fns := c.ExportedFunctions()
	for _, want := range []struct {
		name    string
		results int
		must    bool
	}{
		{abi.ExportVersion, 1, true},
		{abi.ExportStep, 0, true},
		{abi.ExportInitialize, 0, false},
	} {
		def, ok := fns[want.name]
		if !ok {
			if want.must {
				return fmt.Errorf("no function exported as %q", want.name)
			}
			continue
		}
		if !allI32(def.ParamTypes(), 0) || !allI32(def.ResultTypes(), want.results) {
			return fmt.Errorf("export %q has type %s, want %s", want.name, sigString(def), sigWant(0, want.results))
		}
	}
	return nil
}

func (r *Runtime) checkImports(c wazero.CompiledModule) error {
	for _, def := range c.ImportedMemories() {
		mod, name, _ := def.Import()
		return fmt.Errorf("import %s.%s: a component must define its own memory", mod, name)
	}
	for _, def := range c.ImportedFunctions() {
		mod, name, _ := def.Import()
		switch mod {
		case abi.Module:
			sig, ok := abi.HostFunctions[name]
			if !ok {
				return fmt.Errorf("import %s.%s: no such host function", mod, name)
			}
			if !allI32(def.ParamTypes(), sig.Params) || !allI32(def.ResultTypes(), sig.Results) {
				return fmt.Errorf("import %s.%s has type %s, want %s", mod, name, sigString(def), sigWant(sig.Params, sig.Results))
			}
		case abi.WASI:
			want, ok := r.wasiDefs[name]
			if !ok {
				return fmt.Errorf("import %s.%s: no such WASI function", mod, name)
			}
			if sigString(def) != sigString(want) {
				return fmt.Errorf("import %s.%s has type %s, want %s", mod, name, sigString(def), sigString(want))
			}
		default:
			return fmt.Errorf("import %s.%s: module %q is not allowed (only %s and %s)", mod, name, mod, abi.Module, abi.WASI)
		}
	}
	return nil
}

func allI32(ts []api.ValueType, n int) bool {
	if len(ts) != n {
		return false
	}
	for _, t := range ts {
		if t != api.ValueTypeI32 {
			return false
		}
	}
	return true
}

func sigString(def api.FunctionDefinition) string {
	names := func(ts []api.ValueType) string {
		var b bytes.Buffer
		for i, t := range ts {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(api.ValueTypeName(t))
		}
		return b.String()
	}
	return "(" + names(def.ParamTypes()) + ") -> (" + names(def.ResultTypes()) + ")"
}

func sigWant(params, results int) string {
	rep := func(n int) string {
		var b bytes.Buffer
		for i := 0; i < n; i++ {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("i32")
		}
		return b.String()
	}
	return "(" + rep(params) + ") -> (" + rep(results) + ")"
}

// removeTemp deletes the temporary files an interrupted cache write leaves
// under dir (wazero writes NAME.*.tmp, then renames). It runs before the
// runtime compiles anything, so none of them can be in use: one process per
// cache directory.
func removeTemp(dir string) (int, error) {
	n := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(d.Name(), ".tmp") {
			if err := os.Remove(path); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

// clearCache deletes every finished entry of the compiled-module cache
// under dir. Temporary files are left alone: a concurrent compilation may be
// writing one.
func clearCache(dir string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || strings.HasSuffix(d.Name(), ".tmp") {
			return nil
		}
		return os.Remove(path)
	})
}
