package wasmhost

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"

	"github.com/tsubame-rt/tsubame/abi"
	"github.com/tsubame-rt/tsubame/lp"
)

// Module is one loaded version of a component and its pool of warm
// instances. It is safe for concurrent use: concurrent steps never share an
// instance.
type Module struct {
	rt       *Runtime
	hash     lp.Hash
	size     int
	compiled wazero.CompiledModule
	hasInit  bool

	// slots holds one token per running step (and per background
	// replacement), capping the instances of this module.
	slots  chan struct{}
	mu     sync.Mutex
	free   []*instance // idle instances, used last-in first-out (warmest)
	closed bool
	// recycles counts instances retired and replaced, for metrics.
	recycles atomic.Uint64
}

// PoolStats reports the instance pool: instances alive (idle, plus those
// running a step or being replaced) and idle, and how many were recycled.
func (m *Module) PoolStats() (instances, idle int, recycles uint64) {
	m.mu.Lock()
	idle = len(m.free)
	m.mu.Unlock()
	return idle + len(m.slots), idle, m.recycles.Load()
}

// Result is what one step did. Exactly one of the groups is set, by
// Outcome. Its slices are the caller's: the host copied them out of the
// guest.
type Result struct {
	Outcome lp.Outcome
	// Output is the reply (OutcomeReply).
	Output []byte
	// Target, Kind, Input and Cont describe the call (OutcomeCall): Cont is
	// the continuation to save in the calling entry.
	Target, Kind string
	Input, Cont  []byte
	// Code and Msg are the failure (OutcomeFail); Code is never 0.
	Code uint32
	Msg  string
	// OutputRef and InputRef say that Output or Input holds an encoded
	// lp.Ref: the value went by reference (ABI.md §9).
	OutputRef, InputRef bool
	// Blobs are the blobs the step made, rows for the process's blob table
	// (whatever its outcome: a guest may have put them in a continuation).
	Blobs []lp.Blob
}

func newModule(r *Runtime, h lp.Hash, size int, c wazero.CompiledModule, hasInit bool) *Module {
	return &Module{rt: r, hash: h, size: size, compiled: c, hasInit: hasInit,
		slots: make(chan struct{}, r.cfg.maxInstances)}
}

// Hash is the SHA-256 of the module's bytes.
func (m *Module) Hash() lp.Hash { return m.hash }

// Size is the length of the module's bytes.
func (m *Module) Size() int { return m.size }

// Step runs one step of p's active entry in this module; component names it
// in errors and logs. It does not modify p. When the host detects a failure
// (trap, timeout, ABI violation, limit) it returns a Fail Result and a
// *StepError with the same code; that includes ctx ending before the step
// ran (abi.CodeTimeout for a deadline, abi.CodeCanceled otherwise). The only
// other errors, ErrClosed and lp.ErrFinished, mean the step did not run and
// come with a zero Result.
func (m *Module) Step(ctx context.Context, component string, p *lp.Process) (Result, error) {
	e := p.ActiveEntry()
	if e == nil {
		return Result{}, lp.ErrFinished
	}
	lim := &m.rt.cfg.limits
	if err := ctx.Err(); err != nil {
		return failed(lim, component, ctxCode(err), fmt.Errorf("step not started: %w", err))
	}
	in, err := m.get(ctx)
	switch {
	case errors.Is(err, ErrClosed):
		return Result{}, err
	case err != nil && ctx.Err() != nil:
		return failed(lim, component, ctxCode(ctx.Err()), err)
	case err != nil:
		return failed(lim, component, abi.CodeBadModule, fmt.Errorf("instantiate: %w", err))
	}
	in.st = stepState{p: p, e: e, idx: p.Active, component: component, kids: in.st.kids[:0],
		kv: kvState{last: in.st.kv.last[:0]}}
	in.memory.refused = false
	in.ctx.begin(ctx, m.rt.cfg.stepTimeout)
	callErr := in.stepFn.CallWithStack(&in.ctx, nil)
	fired, why, reuse := in.ctx.end()
	in.steps++
	if callErr != nil && m.isClosed() {
		// Runtime.Close stopped the guest mid-step: it did not fail.
		in.st = stepState{}
		m.put(in, false)
		return Result{}, ErrClosed
	}
	res, serr := in.classify(callErr, fired, why)
	in.st = stepState{kids: in.st.kids[:0], kv: kvState{last: in.st.kv.last[:0]}} // keep no reference to p
	m.put(in, reuse && callErr == nil && serr == nil && !m.rt.cfg.fresh[component])
	return res, serr
}

// failed builds the Fail Result and *StepError for a host-detected failure.
func failed(lim *lp.Limits, component string, code uint32, err error) (Result, error) {
	se := &StepError{Component: component, Code: code, Err: err}
	return Result{Outcome: lp.OutcomeFail, Code: code, Msg: truncate(se.Error(), lim.MaxMsg)}, se
}

func ctxCode(err error) uint32 {
	if errors.Is(err, context.DeadlineExceeded) {
		return abi.CodeTimeout
	}
	return abi.CodeCanceled
}

// classify turns how the guest's call ended into the step's Result.
func (in *instance) classify(callErr error, fired bool, why error) (Result, error) {
	st := &in.st
	cfg := &in.m.rt.cfg
	if st.fault != nil { // a host function trapped the step
		return failed(&cfg.limits, st.component, st.fault.Code, st.fault.Err)
	}
	exitCode, exited := uint32(0), false
	if callErr != nil {
		exitCode, exited = exitCodeOf(callErr)
	}
	if exited && exitCode == 0 && !fired {
		callErr = nil // proc_exit(0): the step ended; its outcome stands
	}
	switch {
	case callErr == nil && st.done:
		return st.res, nil
	case fired && errors.Is(why, context.DeadlineExceeded):
		if in.ctx.byParent {
			return failed(&cfg.limits, st.component, abi.CodeTimeout, errors.New("step ran past the caller's deadline"))
		}
		return failed(&cfg.limits, st.component, abi.CodeTimeout, fmt.Errorf("step ran past its deadline of %v", cfg.stepTimeout))
	case fired:
		return failed(&cfg.limits, st.component, ctxCode(why), fmt.Errorf("step stopped: %w", why))
	case callErr == nil:
		return failed(&cfg.limits, st.component, abi.CodeABIViolation, errors.New("step returned without replying, calling or failing"))
	}
	err := callErr
	if exited {
		err = fmt.Errorf("proc_exit(%d)", exitCode)
	}
	if in.memory.refused {
		return failed(&cfg.limits, st.component, abi.CodeMemoryLimit,
			fmt.Errorf("memory.grow refused at the limit of %d pages: %w", cfg.memoryLimitPages, err))
	}
	return failed(&cfg.limits, st.component, abi.CodeTrap, err)
}

// exitCodeOf unwraps a proc_exit. It is apart from classify so that the
// error target escapes to the heap only on this path, not on every step.
func exitCodeOf(err error) (uint32, bool) {
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), true
	}
	return 0, false
}

// truncate cuts s to at most n bytes on a UTF-8 boundary and returns it as
// valid UTF-8. It cuts before converting, so a guest's long range in memory
// costs a copy of n bytes at most.
func truncate[S string | []byte](s S, n int) string {
	if len(s) > n {
		// A rune is at most utf8.UTFMax bytes: look no further back for
		// its start (bytes that are not UTF-8 are cut anywhere).
		i := n
		for j := n; j > 0 && j > n-utf8.UTFMax; j-- {
			if utf8.RuneStart(s[j]) {
				i = j
				break
			}
		}
		s = s[:i]
	}
	str := string(s)
	if !utf8.ValidString(str) {
		str = string([]rune(str)) // replaces invalid bytes with U+FFFD
	}
	return str
}

// instance is one pooled instantiation of a Module. Only one step uses it
// at a time.
type instance struct {
	m      *Module
	mod    api.Module
	mem    api.Memory
	stepFn api.Function
	ctx    stepCtx
	st     stepState
	steps  int
	stdout logWriter
	stderr logWriter
	memory linearMemory
}

// stepState is what the host functions need during one step.
type stepState struct {
	p         *lp.Process
	e         *lp.Entry
	idx       int32
	component string
	done      bool   // an outcome was given
	res       Result // the outcome
	fault     *StepError
	kids      []int32 // finished children of the entry, in call order
	kidsOK    bool
	logBytes  int // guest log output this step, against LogLimits.PerStep
	kv        kvState
}

// initTimeoutFactor bounds instantiation, _initialize included, at this
// many step deadlines: a Go guest's runtime start takes milliseconds, a
// guest whose _initialize never returns must not hang the pool.
const initTimeoutFactor = 10

func (m *Module) newInstance(ctx context.Context) (*instance, error) {
	in := &instance{m: m}
	in.ctx.init(in)
	in.memory.limit = uint64(m.rt.cfg.memoryLimitPages) * 65536
	in.stdout = logWriter{in: in, stream: "stdout", level: slog.LevelInfo}
	in.stderr = logWriter{in: in, stream: "stderr", level: slog.LevelWarn}
	starts := []string{} // never _start: ABI.md §2
	if m.hasInit {
		starts = []string{abi.ExportInitialize}
	}
	mc := wazero.NewModuleConfig().
		WithName(""). // pooled instances are anonymous; names must be unique
		WithStartFunctions(starts...).
		WithStdout(&in.stdout).
		WithStderr(&in.stderr).
		WithSysWalltime().
		WithSysNanotime().
		WithRandSource(rand.Reader)
	ictx, cancel := context.WithTimeout(experimental.WithMemoryAllocator(ctx, &in.memory), initTimeoutFactor*m.rt.cfg.stepTimeout)
	defer cancel()
	mod, err := m.rt.wz.InstantiateModule(ictx, m.compiled, mc)
	if err != nil {
		return nil, err
	}
	in.mod = mod
	in.mem = mod.ExportedMemory(abi.ExportMemory)
	in.stepFn = mod.ExportedFunction(abi.ExportStep)
	if in.mem == nil || in.stepFn == nil { // checkExports makes this unreachable
		_ = mod.Close(ctx)
		return nil, errors.New("instance lacks memory or tsubame_step")
	}
	return in, nil
}

func (in *instance) checkVersion(ctx context.Context, timeout time.Duration) error {
	vctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	stack := []uint64{0}
	if err := in.mod.ExportedFunction(abi.ExportVersion).CallWithStack(vctx, stack); err != nil {
		return fmt.Errorf("%s failed: %w", abi.ExportVersion, err)
	}
	if v := api.DecodeI32(stack[0]); v != abi.Version {
		return fmt.Errorf("%s returned %d, this host implements %d", abi.ExportVersion, v, abi.Version)
	}
	return nil
}

func (in *instance) close() {
	in.stdout.flush()
	in.stderr.flush()
	_ = in.mod.Close(context.Background())
}

// seed puts the instance made at load time into the pool.
func (m *Module) seed(in *instance) {
	m.mu.Lock()
	m.free = append(m.free, in)
	m.mu.Unlock()
}

// get takes a free instance, or makes one if the pool is below its cap, or
// waits for one.
func (m *Module) get(ctx context.Context) (*instance, error) {
	select {
	case m.slots <- struct{}{}:
	default:
		select {
		case m.slots <- struct{}{}:
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for a free instance: %w", ctx.Err())
		}
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		<-m.slots
		return nil, ErrClosed
	}
	if n := len(m.free); n > 0 {
		in := m.free[n-1]
		m.free = m.free[:n-1]
		m.mu.Unlock()
		return in, nil
	}
	m.mu.Unlock()
	in, err := m.newInstance(context.WithoutCancel(ctx))
	if err != nil {
		<-m.slots
		return nil, err
	}
	return in, nil
}

// put returns an instance after a step. An unhealthy one (it trapped, was
// stopped, or broke the ABI), or one due for recycling, is closed and
// replaced in the background; the replacement keeps the step's slot until
// it is ready, so the cap holds and no later step waits on instantiation
// unless every slot is busy.
func (m *Module) put(in *instance, healthy bool) {
	cfg := &m.rt.cfg
	retire := !healthy || in.mod.IsClosed() ||
		(cfg.recycleSteps > 0 && in.steps >= cfg.recycleSteps) ||
		uint64(in.mem.Size()) > uint64(cfg.recyclePages)*65536 // 65536 pages overflow uint32
	m.mu.Lock()
	switch {
	case m.closed:
		m.mu.Unlock()
		in.close()
		<-m.slots
	case !retire:
		m.free = append(m.free, in)
		m.mu.Unlock()
		<-m.slots
	default:
		m.rt.bg.Add(1) // under m.mu, so never after close has started Wait
		m.mu.Unlock()
		m.recycles.Add(1)
		go m.replace(in)
	}
}

func (m *Module) replace(old *instance) {
	defer m.rt.bg.Done()
	defer func() { <-m.slots }()
	old.close()
	if m.isClosed() {
		return
	}
	in, err := m.newInstance(context.Background())
	if err != nil {
		if m.isClosed() {
			return // dropped while instantiating
		}
		m.rt.cfg.logger.Warn("wasmhost: replace a retired instance", "module", m.hash.Short(), "err", err)
		return
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		in.close()
		return
	}
	m.free = append(m.free, in)
	m.mu.Unlock()
}

func (m *Module) isClosed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closed
}

// close stops the pool: idle instances close now, busy ones when their
// step returns.
func (m *Module) close(ctx context.Context) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.closed = true
	free := m.free
	m.free = nil
	m.mu.Unlock()
	for _, in := range free {
		in.close()
	}
	_ = m.compiled.Close(ctx)
}
