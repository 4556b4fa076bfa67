package wasmhost

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/tsubame-rt/tsubame/abi"
	"github.com/tsubame-rt/tsubame/lp"
)

// memBlobs is an in-memory Blobs for unit tests.
type memBlobs struct {
	threshold, max int
	m              map[lp.Hash][]byte
	full           bool
}

func (b *memBlobs) Threshold() int { return b.threshold }
func (b *memBlobs) MaxBlob() int   { return b.max }
func (b *memBlobs) Put(_ context.Context, _ *lp.Process, data []byte) (lp.Blob, error) {
	if b.full {
		return lp.Blob{}, &BlobError{Code: abi.CodeLimit, Err: errors.New("blob memory limit of 0 bytes")}
	}
	r := lp.RefOf(data)
	b.m[r.Hash] = bytes.Clone(data)
	return lp.Blob{Ref: r, Holder: "here"}, nil
}
func (b *memBlobs) Get(_ context.Context, _ *lp.Process, row lp.Blob) ([]byte, error) {
	if d, ok := b.m[row.Hash]; ok {
		return d, nil
	}
	return nil, errors.New("gone")
}

// The blob functions: blobby puts its input, reads it back from offset 1,
// and replies with the blob by reference; the step reports the blob as a
// guest row. Given a reference as input it replies with it unread.
func TestBlobFunctions(t *testing.T) {
	bs := &memBlobs{threshold: 64, max: 1 << 20, m: map[lp.Hash][]byte{}}
	rt := newRuntime(t, testConfig(nil).WithBlobs(bs))
	m := load(t, rt, "blobby")
	in := []byte("a value kept as a blob")
	res, err := m.Step(context.Background(), "blobby", lp.New("t", "blobby", "k", in))
	if err != nil || res.Outcome != lp.OutcomeReply || !res.OutputRef {
		t.Fatalf("step: %+v, %v", res, err)
	}
	ref, _ := lp.ParseRef(res.Output)
	if ref != lp.RefOf(in) || len(res.Blobs) != 1 || !res.Blobs[0].Guest || res.Blobs[0].Holder != "here" {
		t.Fatalf("reply ref %v, rows %+v", ref, res.Blobs)
	}
	// An input by reference is resolved by input and named by input_ref.
	p := lp.New("t", "blobby", "k", ref.Bytes())
	p.Entries[0].InputRef = true
	p.Blobs = []lp.Blob{{Ref: ref, Holder: "here"}}
	if res, err := m.Step(context.Background(), "blobby", p); err != nil || !res.OutputRef || !bytes.Equal(res.Output, ref.Bytes()) {
		t.Fatalf("reference input: %+v, %v", res, err)
	}
	// A full store gives blob_put the limit code, which blobby fails with.
	bs.full = true
	res, _ = m.Step(context.Background(), "blobby", lp.New("t", "blobby", "k", in))
	if res.Outcome != lp.OutcomeFail || res.Code != abi.CodeLimit {
		t.Fatalf("full store: %+v", res)
	}
}

// Replies over the threshold go by reference automatically; an input by
// reference whose blob is gone fails the step with code 7.
func TestAutomaticByReference(t *testing.T) {
	bs := &memBlobs{threshold: 64, max: 4 << 20, m: map[lp.Hash][]byte{}}
	rt := newRuntime(t, testConfig(nil).WithBlobs(bs))
	m := load(t, rt, "echo")
	big := bytes.Repeat([]byte("y"), 2<<20) // over the 1 MiB inline limit
	r, err := m.Step(context.Background(), "echo", lp.New("t", "echo", "k", big))
	if err != nil || !r.OutputRef || len(r.Blobs) != 1 || r.Blobs[0].Guest {
		t.Fatalf("echo of 2 MiB: outputRef %v rows %+v err %v", r.OutputRef, r.Blobs, err)
	}
	if small, _ := m.Step(context.Background(), "echo", lp.New("t", "echo", "k", []byte("tiny"))); small.OutputRef || string(small.Output) != "tiny" {
		t.Fatalf("small reply went by reference: %+v", small)
	}
	gone := lp.RefOf([]byte("never kept"))
	p := lp.New("t", "echo", "k", gone.Bytes())
	p.Entries[0].InputRef = true
	p.Blobs = []lp.Blob{{Ref: gone, Holder: "elsewhere"}}
	r, err = m.Step(context.Background(), "echo", p)
	var se *StepError
	if !errors.As(err, &se) || r.Code != abi.CodeUnavailable {
		t.Fatalf("missing input blob: %+v, %v", r, err)
	}
}
