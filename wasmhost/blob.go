package wasmhost

import (
	"context"
	"errors"
	"fmt"

	"github.com/tetratelabs/wazero/api"

	"github.com/tsubame-rt/tsubame/abi"
	"github.com/tsubame-rt/tsubame/lp"
)

// Blobs is where a step's large data lives (node/blob backs it; ABI.md §9).
// wasmhost asks it for bytes and hands it bytes; where they are kept and
// how they travel is its business.
type Blobs interface {
	// Threshold is the size above which a reply or a call's input goes by
	// reference (0: never automatically).
	Threshold() int
	// MaxBlob is the largest blob Put takes.
	MaxBlob() int
	// Put keeps data (borrowed: copy it) for p and returns its row for p's
	// blob table. An error with a HostCode() uint32 method (BlobError)
	// chooses the code the guest sees (abi.CodeLimit for a memory limit).
	Put(ctx context.Context, p *lp.Process, data []byte) (lp.Blob, error)
	// Get returns the bytes b addresses, verified, fetching them from
	// b.Holder if they are not here. The result must not be modified.
	Get(ctx context.Context, p *lp.Process, b lp.Blob) ([]byte, error)
}

// BlobError is a blob operation that failed with a host code: abi.CodeLimit
// for a size or memory limit, abi.CodeUnavailable when the bytes could not
// be had. Implementations of Blobs may return any error with a
// HostCode() uint32 method instead.
type BlobError struct {
	Code uint32
	Err  error
}

func (e *BlobError) Error() string { return e.Err.Error() }
func (e *BlobError) Unwrap() error { return e.Err }

// HostCode is the abi code a step fails with when it needs the blob.
func (e *BlobError) HostCode() uint32 { return e.Code }

// blobCode is the host code for a failed blob operation: the error's own
// (any error with a HostCode method, so that Blobs implementations need not
// import this package), else abi.CodeUnavailable.
func blobCode(err error) uint32 {
	var hc interface{ HostCode() uint32 }
	if errors.As(err, &hc) && hc.HostCode() != 0 {
		return hc.HostCode()
	}
	return abi.CodeUnavailable
}

// byRef reports whether a value of n bytes goes by reference.
func (in *instance) byRef(n int) bool {
	b := in.m.rt.cfg.blobs
	return b != nil && b.Threshold() > 0 && n > b.Threshold()
}

// put stores data as a blob of this step; guest marks blob_put's.
func (in *instance) put(data []byte, guest bool) (lp.Ref, error) {
	b := in.m.rt.cfg.blobs
	if b == nil {
		return lp.Ref{}, &BlobError{Code: abi.CodeUnavailable, Err: errors.New("this host keeps no blobs")}
	}
	if len(data) > b.MaxBlob() {
		return lp.Ref{}, &BlobError{Code: abi.CodeLimit, Err: fmt.Errorf("blob of %d bytes exceeds the limit of %d", len(data), b.MaxBlob())}
	}
	row, err := b.Put(&in.ctx, in.st.p, data)
	if err != nil {
		return lp.Ref{}, err
	}
	row.Guest = guest
	in.st.res.Blobs = appendRow(in.st.res.Blobs, row)
	return row.Ref, nil
}

func appendRow(rows []lp.Blob, row lp.Blob) []lp.Blob {
	for i := range rows {
		if rows[i].Hash == row.Hash {
			rows[i].Guest = rows[i].Guest || row.Guest
			return rows
		}
	}
	return append(rows, row)
}

// known reports whether ref is in the process's blob table or among this
// step's blobs.
func (in *instance) known(ref lp.Ref) bool {
	if in.st.p.BlobRow(ref.Hash) >= 0 {
		return true
	}
	for _, r := range in.st.res.Blobs {
		if r.Hash == ref.Hash {
			return true
		}
	}
	return false
}

// resolve returns the bytes of ref: from the blob table row that says who
// holds them, or from this step's own blobs.
func (in *instance) resolve(ref lp.Ref) ([]byte, error) {
	b := in.m.rt.cfg.blobs
	if b == nil {
		return nil, &BlobError{Code: abi.CodeUnavailable, Err: fmt.Errorf("blob %s: this host keeps no blobs", ref)}
	}
	row := lp.Blob{Ref: ref}
	if i := in.st.p.BlobRow(ref.Hash); i >= 0 {
		row = in.st.p.Blobs[i]
	} else {
		for _, r := range in.st.res.Blobs {
			if r.Hash == ref.Hash {
				row = r
			}
		}
	}
	// A reference that is not the process's (kept from another process,
	// say) has no holder: only a copy already here can serve it.
	if row.Holder != "" && row.Size != ref.Size {
		return nil, &BlobError{Code: abi.CodeUnavailable, Err: fmt.Errorf("blob %s: the process knows it as %s", ref, row.Ref)}
	}
	data, err := b.Get(&in.ctx, in.st.p, row)
	if err != nil {
		return nil, err
	}
	return data, nil
}

// value returns an input or output as the component reads it: the bytes
// themselves, or the blob a reference names. A blob that cannot be had
// fails the step: the component cannot go on without its input.
func (in *instance) value(fn string, v []byte, isRef bool) []byte {
	if !isRef {
		return v
	}
	ref, err := lp.ParseRef(v)
	if err != nil {
		in.trap(abi.CodeInternal, "%s: %v", fn, err)
	}
	data, err := in.resolve(ref)
	if err != nil {
		in.trap(blobCode(err), "%s: %v", fn, err)
	}
	return data
}

const refLen = uint32(lp.RefLen)

// refAt reads a guest's RefLen-byte reference at ptr.
func (in *instance) refAt(fn string, ptr uint32) lp.Ref {
	r, _ := lp.ParseRef(in.span(fn, ptr, refLen))
	return r
}

func hostBlobPut(ctx context.Context, mod api.Module, stack []uint64) {
	in := current(ctx, mod)
	data := in.span(abi.FnBlobPut, api.DecodeU32(stack[0]), api.DecodeU32(stack[1]))
	out := in.span(abi.FnBlobPut, api.DecodeU32(stack[2]), refLen)
	ref, err := in.put(data, true)
	if err != nil {
		in.m.rt.cfg.logger.Debug("blob_put failed", append(attrsAny(in), "err", err)...)
		stack[0] = api.EncodeU32(blobCode(err))
		return
	}
	ref.Append(out[:0])
	stack[0] = 0
}

func hostBlobRead(ctx context.Context, mod api.Module, stack []uint64) {
	in := current(ctx, mod)
	ref := in.refAt(abi.FnBlobRead, api.DecodeU32(stack[0]))
	off := uint64(api.DecodeU32(stack[1]))
	dst := in.span(abi.FnBlobRead, api.DecodeU32(stack[2]), api.DecodeU32(stack[3]))
	data, err := in.resolve(ref)
	if err != nil {
		in.m.rt.cfg.logger.Debug("blob_read failed", append(attrsAny(in), "err", err)...)
		stack[0] = api.EncodeI32(-int32(blobCode(err)))
		return
	}
	if off > uint64(len(data)) {
		in.trap(abi.CodeABIViolation, "blob_read: offset %d is past the end of blob %s", off, ref)
	}
	stack[0] = api.EncodeU32(uint32(copy(dst, data[off:])))
}

func hostInputRef(ctx context.Context, mod api.Module, stack []uint64) {
	in := current(ctx, mod)
	out := in.span(abi.FnInputRef, api.DecodeU32(stack[0]), refLen)
	if !in.st.e.InputRef {
		stack[0] = 0
		return
	}
	copy(out, in.st.e.Input)
	stack[0] = 1
}

func hostChildRef(ctx context.Context, mod api.Module, stack []uint64) {
	in := current(ctx, mod)
	c := in.child(api.DecodeU32(stack[0]))
	out := in.span(abi.FnChildRef, api.DecodeU32(stack[1]), refLen)
	switch {
	case c == nil:
		stack[0] = api.EncodeI32(-1)
	case c.OutputRef:
		copy(out, c.Output)
		stack[0] = 1
	default:
		stack[0] = 0
	}
}

func hostReplyRef(ctx context.Context, mod api.Module, stack []uint64) {
	in := current(ctx, mod)
	in.outcome(abi.FnReplyRef)
	ref := in.refAt(abi.FnReplyRef, api.DecodeU32(stack[0]))
	// The blob must be one the process can reach: resolving it proves that
	// (and brings it here, where the reply is kept until it moves on).
	if !in.known(ref) {
		in.trap(abi.CodeABIViolation, "reply_ref: blob %s is not one of this process's", ref)
	}
	if _, err := in.resolve(ref); err != nil {
		in.trap(blobCode(err), "reply_ref: %v", err)
	}
	in.st.res.Outcome, in.st.res.Output, in.st.res.OutputRef = lp.OutcomeReply, ref.Bytes(), true
}

func attrsAny(in *instance) []any {
	var out []any
	for _, a := range in.logAttrs() {
		out = append(out, a)
	}
	return out
}
