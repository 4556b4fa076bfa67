package lp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
)

func mustMarshal(t testing.TB, p *Process) []byte {
	t.Helper()
	b, err := p.MarshalBinary()
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return b
}

func fill(n int, c byte) []byte { return bytes.Repeat([]byte{c}, n) }

// shapes are the Processes the round-trip tests and the fuzz seeds use.
func shapes(t testing.TB) map[string]*Process {
	t.Helper()
	s := map[string]*Process{}

	s["root only"] = New("gw", "front", "get", nil)

	chain := New("gw", "t", "k", []byte("in"))
	for i := range 20 {
		mustCall(t, chain, "t", "k", []byte{byte(i)}, []byte{byte(i), 1})
	}
	s["deep chain"] = chain

	done := New("gw", "front", "get", []byte("in"))
	mustCall(t, done, "cache", "get", []byte("k"), []byte("c"))
	_ = done.Reply([]byte("v"))
	_ = done.Reply([]byte("out"))
	s["finished"] = done

	failed := New("gw", "front", "get", nil)
	_ = failed.Fail(503, "overloaded")
	s["failed"] = failed

	traced := New("gw", "front", "get", nil)
	for i := range 5 {
		traced.Record(Step{Node: "node-1", Entry: int32(i), Outcome: Outcome(i%3 + 1), Micros: uint32(i * 1000)}, 3)
	}
	s["with trace"] = traced

	s["full"] = fullProcess()
	s["4KiB"] = bench4KiB()
	s["4KiB v2"] = bench4KiBV2()
	untraced := fullProcess()
	untraced.TraceContext = TraceContext{}
	s["untraced"] = untraced
	return s
}

// fullProcess sets every field of Process, Entry and Step to a non-zero
// value somewhere (TestFixtureCoversEveryField checks), so a field the codec
// forgets fails the round trip.
// fullProcess is fullProcessV2 with what version 3 added: references in
// place of an input and an output, and the blob table.
func fullProcess() *Process {
	p := fullProcessV2()
	p.Entries[0].Input, p.Entries[0].InputRef = Ref{Hash{9}, 1 << 40}.Bytes(), true
	p.Entries = append(p.Entries, Entry{Parent: 0, Target: "store", Kind: "get", State: StateDone, Output: Ref{Hash{8}, 5}.Bytes(), OutputRef: true})
	p.Blobs = []Blob{{Ref: Ref{Hash{9}, 1 << 40}, Holder: "gateway-7"}, {Ref: Ref{Hash{8}, 5}, Holder: "node-b", Guest: true}}
	return p
}

// fullProcessV2 sets every field versions 1 and 2 encode (the golden v1
// files were written from it).
func fullProcessV2() *Process {
	p := &Process{
		ID:           ID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		Origin:       "gateway-7",
		Attempt:      1<<32 - 1,
		Deadline:     -1 << 62, // negative exercises the zig-zag form
		Active:       2,
		TraceDropped: 12345,
		Entries: []Entry{
			{Parent: NoEntry, Target: "front", Kind: "render", Input: []byte("root input"), Cont: []byte("root cont"),
				Module: Hash{0xaa, 31: 0xbb}, Steps: 3, State: StateWaiting},
			{Parent: 0, Target: "cache", Kind: "get", Module: Hash{1}, Steps: 1, State: StateFailed, ErrCode: 1<<32 - 1,
				ErrMsg: "miss", Output: []byte("partial")},
			{Parent: 0, Target: "logic", Kind: "render", Input: fill(300, 'x'), State: StateReady},
		},
		Trace: []Step{
			{Node: "node-a", Entry: 0, Outcome: OutcomeCall, Micros: 1<<32 - 1, Start: 1_760_000_000_000_000, WaitMicros: 1<<32 - 1, Next: MoveNotHeld},
			{Node: "node-b", Entry: -1 << 31, Outcome: OutcomeFail, Micros: 7, Start: -1, WaitMicros: 3, Next: MoveReturn},
			{Node: "node-c", Entry: 1<<31 - 1, Outcome: OutcomeReply},
		},
		TraceContext: TraceContext{
			TraceID: [16]byte{0x4b, 0xf9, 15: 0x36}, SpanID: [8]byte{0x00, 0xf0, 7: 0x67}, Flags: 1,
			State: "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
		},
	}
	return p
}

// bench4KiB is a realistic LP mid-flight: 8 entries (a caller chain two
// deep, finished siblings, a failure) and 8 trace steps, about 4 KiB encoded.
func bench4KiB() *Process {
	mod := func(b byte) Hash { var h Hash; h[0], h[31] = b, b; return h }
	p := &Process{
		ID: ID{0xde, 0xad}, Origin: "gateway-1", Attempt: 1, Deadline: 1_760_000_000_000_000_000, Active: 7,
		Entries: []Entry{
			{Parent: NoEntry, Target: "frontend", Kind: "render", Input: fill(512, 'i'), Cont: fill(256, 'c'), Module: mod(1), Steps: 2, State: StateWaiting},
			{Parent: 0, Target: "cache", Kind: "get", Module: mod(2), Steps: 1, State: StateDone, Output: fill(512, 'o')},
			{Parent: 0, Target: "logic", Kind: "render", Input: fill(512, 'i'), Cont: fill(512, 'c'), Module: mod(3), Steps: 4, State: StateWaiting},
			{Parent: 2, Target: "fonts", Kind: "load", Module: mod(4), Steps: 1, State: StateDone, Output: fill(384, 'o')},
			{Parent: 2, Target: "fonts", Kind: "load", Module: mod(4), Steps: 1, State: StateFailed, ErrCode: 404, ErrMsg: "font not found: serif-bold"},
			{Parent: 2, Target: "cache", Kind: "put", Module: mod(2), Steps: 1, State: StateDone, Output: fill(16, 'o')},
			{Parent: 2, Target: "layout", Kind: "measure", Module: mod(5), Steps: 1, State: StateDone, Output: fill(280, 'o')},
			{Parent: 2, Target: "rasterize", Kind: "draw", Input: fill(512, 'i'), State: StateReady},
		},
	}
	for i := range 8 {
		p.Record(Step{Node: "node-2", Entry: int32(i), Outcome: OutcomeCall, Micros: 150}, DefaultLimits.MaxTrace)
	}
	return p
}

// bench4KiBV2 is bench4KiB as a current node makes it: traced, with each
// step's start, queue wait and move reason.
func bench4KiBV2() *Process {
	p := bench4KiB()
	p.TraceContext = TraceContext{TraceID: [16]byte{1, 15: 2}, SpanID: [8]byte{3, 7: 4}, Flags: 1}
	for i := range p.Trace {
		p.Trace[i].Start = 1_760_000_000_000_000 + int64(i)*200
		p.Trace[i].WaitMicros = 40
		p.Trace[i].Next = Move(i % int(maxMove+1))
	}
	return p
}

// equalProcess compares as the codec sees values: an empty slice and nil
// are the same.
func equalProcess(a, b *Process) bool {
	norm := func(p *Process) Process {
		q := *p
		q.Entries = append([]Entry(nil), p.Entries...)
		for i := range q.Entries {
			e := &q.Entries[i]
			for _, s := range []*[]byte{&e.Input, &e.Cont, &e.Output} {
				if len(*s) == 0 {
					*s = nil
				}
			}
		}
		if len(q.Trace) == 0 {
			q.Trace = nil
		}
		return q
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

func TestFixtureCoversEveryField(t *testing.T) {
	seen := map[string]bool{}
	var walk func(path string, v reflect.Value)
	walk = func(path string, v reflect.Value) {
		switch v.Kind() {
		case reflect.Struct:
			if !v.IsZero() {
				seen[path] = true // a struct field (Blob.Ref) counts as set when any of it is
			}
			for i := range v.NumField() {
				f := v.Type().Field(i)
				walk(path+"."+f.Name, v.Field(i))
			}
			return
		case reflect.Slice:
			if v.Type().Elem().Kind() == reflect.Struct {
				for i := range v.Len() {
					walk(path, v.Index(i))
				}
				return
			}
		}
		if !v.IsZero() {
			seen[path] = true
		}
	}
	walk("Process", reflect.ValueOf(*fullProcess()))
	var want []string
	var fields func(path string, t reflect.Type)
	fields = func(path string, t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			ft := f.Type
			if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
				fields(path+"."+f.Name, ft.Elem())
				continue
			}
			if ft.Kind() == reflect.Struct {
				fields(path+"."+f.Name, ft)
				continue
			}
			want = append(want, path+"."+f.Name)
		}
	}
	fields("Process", reflect.TypeOf(Process{}))
	for _, f := range want {
		if !seen[f] {
			t.Errorf("fullProcess leaves %s zero: set it so the codec round trip covers it", f)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	for name, p := range shapes(t) {
		t.Run(name, func(t *testing.T) {
			mustValid(t, p)
			b := mustMarshal(t, p)
			if len(b) != p.WireSize() {
				t.Fatalf("len %d, WireSize %d: the size pass disagrees with the encoder", len(b), p.WireSize())
			}
			var q Process
			if err := q.UnmarshalBinary(b); err != nil {
				t.Fatal(err)
			}
			if !equalProcess(p, &q) {
				t.Fatalf("round trip changed the process:\n got %+v\nwant %+v", q, *p)
			}
			// AppendBinary appends after what is there.
			b2, err := p.AppendBinary([]byte("prefix"))
			if err != nil || string(b2[:6]) != "prefix" || !bytes.Equal(b2[6:], b) {
				t.Fatalf("AppendBinary: err %v, bytes differ from MarshalBinary", err)
			}
		})
	}
}

// WireSize must equal the encoded length for every field at every varint
// width: each length and number below sits on either side of a boundary
// where its uvarint grows a byte.
func TestWireSizeMatchesEncoding(t *testing.T) {
	sizes := []int{0, 1, 127, 128, 16383, 16384, 70000}
	nums := []uint64{0, 1, 127, 128, 16383, 16384, 1<<21 - 1, 1 << 21, 1<<28 - 1, 1 << 28, 1<<32 - 1}
	deadlines := []int64{0, 1, -1, 63, -64, 64, -65, 1 << 40, -1 << 62, 1<<63 - 1, -1 << 63}
	n := 0
	check := func(p *Process) {
		t.Helper()
		n++
		b := mustMarshal(t, p)
		if len(b) != p.WireSize() {
			t.Fatalf("shape %d: encoded %d bytes, WireSize %d", n, len(b), p.WireSize())
		}
	}
	for i, sz := range sizes {
		num := nums[i%len(nums)]
		p := New(string(fill(min(sz, 128), 'o')), "front", "get", fill(sz, 'i'))
		p.Attempt, p.TraceDropped = uint32(num), uint32(nums[(i+3)%len(nums)])
		p.Deadline = deadlines[i%len(deadlines)]
		check(p)
		mustCall(t, p, "t", "k", fill(sz, 'x'), fill(min(sz, 1<<16), 'c'))
		p.Entries[0].Steps = uint32(num)
		p.Entries[0].Module = Hash{byte(i)}
		check(p)
		for j := range 130 { // entry count and Active cross 127
			mustCall(t, p, "t", "k", nil, nil)
			if j%2 == 0 {
				_ = p.Reply(fill(j*sz/64, 'r'))
			} else {
				_ = p.Fail(uint32(nums[j%len(nums)]), string(fill(j%200, 'm')))
			}
		}
		check(p)
		for j := range 130 {
			p.Record(Step{Node: string(fill(j%130, 'n')), Entry: int32(deadlines[j%len(deadlines)] >> 33),
				Outcome: Outcome(j%3 + 1), Micros: uint32(nums[j%len(nums)])}, 256)
		}
		check(p)
		_ = p.Reply(fill(sz, 'z'))
		_ = p.Fail(uint32(num)|1, "done")
		check(p)
	}
	for _, d := range deadlines {
		p := New("gw", "front", "get", nil)
		p.Deadline = d
		check(p)
	}
	for name, p := range shapes(t) {
		if len(mustMarshal(t, p)) != p.WireSize() {
			t.Errorf("%s: WireSize disagrees with the encoding", name)
		}
	}
}

func TestDecodeReusesAndOverwrites(t *testing.T) {
	big := mustMarshal(t, shapes(t)["deep chain"])
	small := mustMarshal(t, fullProcess())
	var p Process
	if err := Decode(big, Limits{}, &p); err != nil {
		t.Fatal(err)
	}
	entries := &p.Entries[0]
	if err := Decode(small, Limits{}, &p); err != nil {
		t.Fatal(err)
	}
	if &p.Entries[0] != entries {
		t.Fatal("Decode did not reuse the Entries array")
	}
	if !equalProcess(&p, fullProcess()) {
		t.Fatalf("decoding into a used Process left old values: %+v", p)
	}
	tail := p.Entries[len(p.Entries):21]
	for i := range tail {
		if !reflect.DeepEqual(tail[i], Entry{}) {
			t.Fatalf("entry %d beyond the new length still holds %+v", len(p.Entries)+i, tail[i])
		}
	}
	// Decoding a process with no trace into one that had a trace empties it.
	if err := Decode(big, Limits{}, &p); err != nil || len(p.Trace) != 0 {
		t.Fatalf("err %v, trace %d, want empty", err, len(p.Trace))
	}
}

func TestDecodeAliases(t *testing.T) {
	b := mustMarshal(t, fullProcess())
	var p Process
	if err := Decode(b, Limits{}, &p); err != nil {
		t.Fatal(err)
	}
	in := p.Entries[0].Input
	if cap(in) != len(in) {
		t.Fatalf("decoded slice has cap %d > len %d: an append would overwrite the buffer", cap(in), len(in))
	}
	before := bytes.Clone(b)
	p.Entries[0].Input = append(in, "more"...)
	if !bytes.Equal(b, before) {
		t.Fatal("appending to a decoded slice wrote into the input buffer")
	}
	// The documented rule: strings share the buffer.
	i := bytes.Index(b, []byte("gateway-7"))
	b[i] = 'G'
	if p.Origin != "Gateway-7" {
		t.Fatalf("Origin = %q: Decode no longer aliases, update the docs", p.Origin)
	}
	// UnmarshalBinary copies, as encoding.BinaryUnmarshaler requires.
	var q Process
	if err := q.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	b[i] = 'g'
	if q.Origin != "Gateway-7" {
		t.Fatalf("Origin = %q: UnmarshalBinary aliased its input", q.Origin)
	}
}

func TestEncodeRefusesInvalid(t *testing.T) {
	p := New("gw", "a", "k", nil)
	p.Entries[0].State = StateDone
	if _, err := p.MarshalBinary(); err == nil {
		t.Fatal("encoded a process whose active entry is done")
	}
	p = New("gw", "a", "k", nil)
	p.Trace = []Step{{Node: "n", Outcome: 0}}
	if b, err := p.AppendBinary([]byte("x")); err == nil || string(b) != "x" {
		t.Fatalf("encoded a trace step with outcome 0: %v %q", err, b)
	}
	p = New("gw", "a", "k", nil)
	p.Trace = []Step{{Node: "n", Outcome: OutcomeReply, Next: maxMove + 1}}
	if _, err := p.MarshalBinary(); err == nil {
		t.Fatal("encoded a trace step with an unknown move")
	}
	for _, tc := range []TraceContext{{TraceID: [16]byte{1}}, {SpanID: [8]byte{1}}, {Flags: 1}, {State: "a=b"},
		{TraceID: [16]byte{1}, SpanID: [8]byte{1}, State: string(fill(MaxTraceState+1, 'x'))}} {
		p = New("gw", "a", "k", nil)
		p.TraceContext = tc
		if _, err := p.MarshalBinary(); err == nil {
			t.Fatalf("encoded trace context %+v", tc)
		}
	}
}

// Version 1 encodings, written by the previous release's encoder (the files
// in testdata were made by it from fullProcess and bench4KiB with the
// fields version 1 lacked left zero), still decode.
func TestDecodeVersion1(t *testing.T) {
	for name, want := range map[string]*Process{"v1-full.lp": fullProcessV2(), "v1-4KiB.lp": bench4KiB()} {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if b[len(wireMagic)] != 1 {
			t.Fatalf("%s is version %d, want 1", name, b[len(wireMagic)])
		}
		want.TraceContext = TraceContext{}
		for i := range want.Trace {
			want.Trace[i].Start, want.Trace[i].WaitMicros, want.Trace[i].Next = 0, 0, MoveNone
		}
		var p Process
		if err := Decode(b, Limits{}, &p); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !equalProcess(&p, want) {
			t.Fatalf("%s decoded as\n%+v\nwant\n%+v", name, p, *want)
		}
		// Re-encoding writes the current version, which decodes the same.
		var q Process
		if err := Decode(mustMarshal(t, &p), Limits{}, &q); err != nil || !equalProcess(&p, &q) {
			t.Fatalf("%s: v1 -> v2 round trip: %v", name, err)
		}
		// Every strict prefix of a v1 encoding is refused, without panicking.
		for n := range len(b) {
			if err := Decode(b[:n], Limits{}, &q); err == nil {
				t.Fatalf("%s cut at %d decoded", name, n)
			}
		}
	}
}

// header returns an encoding of a Process's header up to and including
// TraceContext, with an empty Origin and no trace context.
func header() []byte {
	b := append([]byte(wireMagic), WireVersion)
	b = append(b, make([]byte, 16)...)
	return append(b, 0, 0, 0, 0, 0) // Origin "", Attempt, Deadline, TraceDropped, TraceContext
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func uv(v uint64) []byte { return binary.AppendUvarint(nil, v) }

func TestDecodeMalformed(t *testing.T) {
	valid := func(mutate func(p *Process)) []byte {
		p := New("gw", "a", "k", nil)
		p.ID = ID{} // fixed bytes, so that the byte edits below hit only what they mean to
		mustCall(t, p, "b", "k", nil, nil)
		p.Record(Step{Node: "n", Outcome: OutcomeCall}, 8)
		mutate(p)
		return p.appendWire(nil)
	}
	ok := valid(func(*Process) {})
	const originAt = 21
	tests := []struct {
		name  string
		in    []byte
		lim   Limits
		field string
		at    int    // -1: don't check
		limit string // LimitError.What, or "" for none
		is    error  // errors.Is target, or nil
		msg   string // substring of the message, or ""
	}{
		{name: "empty", in: nil, field: "magic", at: 0, is: errTruncated},
		{name: "bad magic", in: cat([]byte("JSON"), ok[4:]), field: "magic", at: 0, msg: "not an lp encoding"},
		{name: "version 0", in: cat(ok[:4], []byte{0}, ok[5:]), field: "version", at: 4, msg: "unsupported wire version 0"},
		{name: "version 4", in: cat(ok[:4], []byte{4}, ok[5:]), field: "version", at: 4, msg: "unsupported wire version 4, this build reads 1 to 3"},
		{name: "trace context presence 2", in: cat(header()[:25], []byte{2}), field: "TraceContext", at: 25, msg: "presence byte 2"},
		{name: "zero trace ID", in: cat(header()[:25], []byte{1}, fill(16, 0), fill(8, 1), []byte{1, 0}), field: "TraceContext.TraceID", at: 26, msg: "all zero"},
		{name: "zero span ID", in: cat(header()[:25], []byte{1}, fill(16, 1), fill(8, 0), []byte{1, 0}), field: "TraceContext.SpanID", at: 42, msg: "all zero"},
		{name: "tracestate over limit", in: cat(header()[:25], []byte{1}, fill(16, 1), fill(8, 1), []byte{1}, uv(MaxTraceState+1)),
			field: "TraceContext.State", at: 51, limit: "tracestate bytes"},
		{name: "unknown move", in: cat(ok[:len(ok)-2], []byte{byte(maxMove) + 1}, ok[len(ok)-1:]), field: "Trace[0].Next", at: len(ok) - 2, msg: "unknown move(6)"},
		{name: "unknown ref bits", in: func() []byte { b := slices.Clone(ok); b[32] = 4; return b }(), field: "Entries[0].Refs", at: 32, msg: "unknown bits 0x4"},
		{name: "short id", in: ok[:10], field: "ID", at: 5, is: errTruncated},
		{name: "huge origin length", in: cat(header()[:originAt], uv(1<<62)), field: "Origin", at: originAt, limit: "origin bytes"},
		{name: "origin longer than input", in: cat(header()[:originAt], uv(100), []byte("abc")),
			field: "Origin", at: originAt, is: errTruncated, msg: "length 100 with 3 bytes left"},
		{name: "origin over tight limit", in: cat(header()[:originAt], uv(3), []byte("abc")), lim: Limits{MaxName: 2},
			field: "Origin", at: originAt, limit: "origin bytes"},
		{name: "padded varint", in: cat(header()[:originAt], []byte{0x80, 0x00}), field: "Origin", at: originAt, is: errPadded},
		{name: "varint overflow", in: cat(header()[:originAt], fill(11, 0xff)), field: "Origin", at: originAt, is: errOverflow},
		{name: "attempt over 32 bits", in: cat(header()[:originAt+1], uv(1<<32)), field: "Attempt", at: originAt + 1, msg: "32 bits"},
		{name: "huge entry count", in: cat(header(), uv(1<<60)), field: "entry count", at: 26, limit: "entries"},
		{name: "entry count beyond input", in: cat(header(), uv(1000), fill(100, 0)), field: "entry count", at: 26, is: errTruncated},
		{name: "no entries", in: cat(header(), uv(0), uv(0), uv(0)), field: "entry count", at: 26, msg: "at least one entry"},
		{name: "active out of range", in: valid(func(p *Process) { p.Active = 2 }), field: "Active", at: 29, msg: "active entry 2 out of range"},
		{name: "bad state 0", in: valid(func(p *Process) { p.Entries[1].State = 0 }), field: "Entries[1].State", at: -1, msg: "unknown state(0)"},
		{name: "bad state 5", in: valid(func(p *Process) { p.Entries[0].State = 5 }), field: "Entries[0].State", at: 31, msg: "unknown state(5)"},
		{name: "root with parent", in: valid(func(p *Process) { p.Entries[0].Parent = 0 }), field: "Entries[0].Parent", at: 30, msg: "root entry has parent 0"},
		{name: "parent forward", in: valid(func(p *Process) { p.Entries[1].Parent = 1 }), field: "Entries[1].Parent", at: -1, msg: "parent 1 out of range [0,1)"},
		{name: "parent none", in: valid(func(p *Process) { p.Entries[1].Parent = NoEntry }), field: "Entries[1].Parent", at: -1, msg: "parent -1 out of range"},
		{name: "two active", in: valid(func(p *Process) { p.Entries[0].State = StateReady }), field: "Entries", at: 30, msg: "want waiting"},
		{name: "two ready", in: valid(func(p *Process) {
			p.Entries = append(p.Entries, Entry{Parent: 0, Target: "c", Kind: "k", State: StateReady})
		}), field: "Entries", at: 30, msg: "not on the active chain"},
		{name: "empty target", in: valid(func(p *Process) { p.Entries[1].Target = "" }), field: "Entries", msg: "empty target", at: 30},
		{name: "failed code 0", in: valid(func(p *Process) { p.Entries[1].State = StateFailed; p.Active = 0; p.Entries[0].State = StateReady }),
			field: "Entries", at: 30, msg: "failed with code 0"},
		{name: "target over limit", in: valid(func(p *Process) { p.Entries[1].Target = "abcdef" }), lim: Limits{MaxName: 5},
			field: "Entries[1].Target", at: -1, limit: "target bytes"},
		{name: "kind over limit", in: valid(func(p *Process) { p.Entries[0].Kind = "abcdef" }), lim: Limits{MaxName: 5},
			field: "Entries[0].Kind", at: -1, limit: "kind bytes"},
		{name: "input over limit", in: valid(func(p *Process) { p.Entries[1].Input = fill(9, 1) }), lim: Limits{MaxBytes: 8},
			field: "Entries[1].Input", at: -1, limit: "input bytes"},
		{name: "cont over limit", in: valid(func(p *Process) { p.Entries[0].Cont = fill(9, 1) }), lim: Limits{MaxCont: 8},
			field: "Entries[0].Cont", at: -1, limit: "continuation bytes"},
		{name: "output over limit", in: valid(func(p *Process) { p.Entries[1].Output = fill(9, 1) }), lim: Limits{MaxBytes: 8},
			field: "Entries[1].Output", at: -1, limit: "output bytes"},
		{name: "message over limit", in: valid(func(p *Process) { p.Entries[1].ErrMsg = "123456789" }), lim: Limits{MaxMsg: 8},
			field: "Entries[1].ErrMsg", at: -1, limit: "error message bytes"},
		{name: "err code over 32 bits", in: bytes.Replace(valid(func(p *Process) { p.Entries[1].ErrCode = 0x7f }), []byte{0x7f}, cat([]byte{0xff}, uv(1<<28)), 1),
			field: "Entries[1].ErrCode", at: -1, msg: "32 bits"},
		{name: "too many entries", in: valid(func(*Process) {}), lim: Limits{MaxEntries: 1}, field: "entry count", at: 28, limit: "entries"},
		{name: "zero limits are the defaults", in: valid(func(*Process) {}), lim: Limits{MaxDepth: 0}, at: -1},
		{name: "depth over limit", in: func() []byte {
			p := New("gw", "a", "k", nil)
			mustCall(t, p, "b", "k", nil, nil)
			mustCall(t, p, "c", "k", nil, nil)
			return p.appendWire(nil)
		}(), lim: Limits{MaxDepth: 1}, field: "Active", at: 29, limit: "call depth"},
		{name: "too many steps", in: valid(func(p *Process) { p.Record(Step{Node: "n", Outcome: OutcomeReply}, 8) }), lim: Limits{MaxTrace: 1},
			field: "trace count", at: -1, limit: "trace steps"},
		{name: "node over limit", in: valid(func(p *Process) { p.Trace[0].Node = "abcdef" }), lim: Limits{MaxName: 5},
			field: "Trace[0].Node", at: -1, limit: "node name bytes"},
		{name: "bad outcome 0", in: valid(func(p *Process) { p.Trace[0].Outcome = 0 }), field: "Trace[0].Outcome", at: len(ok) - 6, msg: "unknown outcome(0)"},
		{name: "bad outcome 4", in: valid(func(p *Process) { p.Trace[0].Outcome = 4 }), field: "Trace[0].Outcome", at: len(ok) - 6, msg: "unknown outcome(4)"},
		{name: "step entry over 32 bits", in: cat(ok[:len(ok)-7], uv(zigzag(1<<40)), ok[len(ok)-6:]), field: "Trace[0].Entry", at: len(ok) - 7, msg: "32 bits"},
		{name: "trailing bytes", in: cat(ok, []byte{0}), field: "end", at: len(ok), msg: "1 trailing bytes"},
		{name: "over MaxTotal", in: ok, lim: Limits{MaxTotal: len(ok) - 1}, field: "process", at: 0, limit: "encoded bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p Process
			err := Decode(tc.in, tc.lim, &p)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("err = %v (%T), want *DecodeError", err, err)
			}
			if de.Field != tc.field || (tc.at >= 0 && de.Offset != tc.at) {
				t.Fatalf("refused %s at %d (%v), want %s at %d", de.Field, de.Offset, err, tc.field, tc.at)
			}
			if de.Offset < 0 || de.Offset > len(tc.in) {
				t.Fatalf("offset %d outside the input (%d bytes)", de.Offset, len(tc.in))
			}
			var le *LimitError
			if isLimit := errors.As(err, &le); isLimit != (tc.limit != "") || (isLimit && le.What != tc.limit) {
				t.Fatalf("err = %v, want LimitError %q", err, tc.limit)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("err = %v, want it to wrap %v", err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %q, want it to contain %q", err, tc.msg)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "lp: decode "+tc.field+" at byte ") || strings.Count(msg, "lp:") != 1 {
				t.Fatalf("message %q: want one lp: prefix then the field and offset", msg)
			}
		})
	}
}

// Every strict prefix of every valid encoding is refused as truncated, and
// nothing panics.
func TestDecodeTruncated(t *testing.T) {
	for name, p := range shapes(t) {
		b := mustMarshal(t, p)
		var q Process
		for n := range len(b) {
			err := Decode(b[:n], Limits{}, &q)
			var de *DecodeError
			if !errors.As(err, &de) || !errors.Is(err, errTruncated) {
				t.Fatalf("%s cut at %d of %d: err = %v, want a truncation DecodeError", name, n, len(b), err)
			}
			if de.Offset > n {
				t.Fatalf("%s cut at %d: offset %d beyond the input", name, n, de.Offset)
			}
		}
		if err := Decode(b, Limits{}, &q); err != nil {
			t.Fatalf("%s: decoding into a Process left by failed decodes: %v", name, err)
		}
		if !equalProcess(p, &q) {
			t.Fatalf("%s: decode after failures differs", name)
		}
	}
}

// A refused input must not make the decoder allocate for the size it claims.
func TestDecodeHugeCountsDoNotAllocate(t *testing.T) {
	lim := Limits{MaxEntries: 1 << 30, MaxTrace: 1 << 30, MaxName: 1 << 30}
	noTrace := New("gw", "a", "k", nil).appendWire(nil)
	inputs := [][]byte{
		cat(header(), uv(1<<29)),                              // entry count
		cat(header()[:21], uv(1<<29)),                         // Origin length
		cat(header()[:25], []byte{1}, fill(25, 1), uv(1<<29)), // tracestate length
		cat(noTrace[:len(noTrace)-1], uv(1<<29)),              // trace count
	}
	for i, in := range inputs {
		var p Process
		if err := Decode(in, lim, &p); err == nil {
			t.Fatalf("input %d accepted", i)
		}
		// The error value itself takes a few bytes; 2^29 entries would be gigabytes.
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range 10 {
			_ = Decode(in, lim, &p)
		}
		runtime.ReadMemStats(&after)
		if n := (after.TotalAlloc - before.TotalAlloc) / 10; n > 4<<10 {
			t.Fatalf("input %d: %d bytes allocated per refused decode", i, n)
		}
	}
}

func TestCodec4KiBAllocs(t *testing.T) {
	p := bench4KiB()
	buf := make([]byte, 0, 8<<10)
	var q Process
	allocs := testing.AllocsPerRun(100, func() {
		var err error
		if buf, err = p.AppendBinary(buf[:0]); err != nil {
			t.Fatal(err)
		}
		if err := Decode(buf, Limits{}, &q); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 2 {
		t.Fatalf("encode+decode into reused buffers: %v allocations, want at most 2", allocs)
	}
}
