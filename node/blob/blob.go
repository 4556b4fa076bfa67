// Package blob is the distributed memory of the paper (§2.1.2): large
// inputs and replies of lightweight processes are kept as content-addressed
// blobs, and a process carries references to them (lp.Ref) and a table of
// who holds each (lp.Blob). A Store keeps the blobs of one member (node or
// gateway) in memory under a byte limit, serves them to peers, fetches the
// ones a step reads from their holder over the cluster's QUIC connections,
// verifies every fetched byte against its reference, and hands blobs on
// when a process migrates, so that a blob is always held by the process's
// origin or by the member that holds the process (docs/RATIONALE.md "Where
// blobs live").
//
// blob never runs components and never decides where a process goes; it
// never keeps a blob past the life of the processes that use it (their
// deadline, or a retention time for processes without one).
package blob

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tsubame-rt/tsubame/abi"
	"github.com/tsubame-rt/tsubame/internal/mesh/transport"
	"github.com/tsubame-rt/tsubame/internal/tomlconf"
	"github.com/tsubame-rt/tsubame/lp"
)

// Config sizes a Store. Zero fields take DefaultConfig's value.
type Config struct {
	// Threshold: an entry's input or reply larger than this many bytes
	// goes by reference. Default 64 KiB: below it a copy per hop costs
	// less than a fetch's round trip (BENCHMARKS.md).
	Threshold int `toml:"threshold"`
	// MaxBlob is the largest blob kept. Default 8 MiB; it must fit one
	// transport frame (the member's max_lp_bytes).
	MaxBlob int `toml:"max_blob"`
	// MaxMemory bounds the bytes of all blobs kept. Default 256 MiB. Past
	// it, blobs no live process owns are dropped oldest first; if that is
	// not enough the new blob is refused with a *LimitError
	// (abi.CodeLimit).
	MaxMemory int64 `toml:"max_memory"`
	// Retention is how long a blob of a process with no deadline is kept,
	// and how long a cached copy stays unused before it goes. Default 2m.
	Retention time.Duration `toml:"retention"`
}

// DefaultConfig holds every default.
var DefaultConfig = Config{
	Threshold: 64 << 10,
	MaxBlob:   8 << 20,
	MaxMemory: 256 << 20,
	Retention: 2 * time.Minute,
}

func (c Config) withDefaults() Config {
	d := DefaultConfig
	if c.Threshold <= 0 {
		c.Threshold = d.Threshold
	}
	if c.MaxBlob <= 0 {
		c.MaxBlob = d.MaxBlob
	}
	if c.MaxMemory <= 0 {
		c.MaxMemory = d.MaxMemory
	}
	if c.Retention <= 0 {
		c.Retention = d.Retention
	}
	return c
}

// Largest is the largest blob kept under c (MaxBlob or its default).
func (c Config) Largest() int { return c.withDefaults().MaxBlob }

// Fit returns c with the default max_blob lowered, if need be, to what
// one transport frame of maxFrame bytes carries.
func (c Config) Fit(maxFrame int) Config {
	if c.MaxBlob == 0 {
		c.MaxBlob = min(DefaultConfig.MaxBlob, maxFrame-putHeader-transport.FrameSlack/2)
	}
	return c
}

// Validate checks c against the member's frame limit (a max_blob left at
// its default is fitted, see Fit).
func (c Config) Validate(maxFrame int) error {
	c = c.Fit(maxFrame).withDefaults()
	switch {
	case c.MaxBlob+putHeader > maxFrame:
		return &tomlconf.Problem{Key: "blobs.max_blob", Err: fmt.Errorf("%d does not fit a transport frame of %d bytes (raise max_lp_bytes or lower max_blob)", c.MaxBlob, maxFrame)}
	case int64(c.MaxBlob) > c.MaxMemory:
		return &tomlconf.Problem{Key: "blobs.max_blob", Err: fmt.Errorf("%d exceeds max_memory %d", c.MaxBlob, c.MaxMemory)}
	}
	return nil
}

// putHeader is the bytes of a RequestBlobPut body before the blob.
const putHeader = len(lp.ID{}) + 8 + lp.RefLen

// Net is what a Store needs of the transport: one request to a member.
type Net interface {
	Request(ctx context.Context, addr string, kind transport.RequestKind, body []byte, maxResp int) ([]byte, error)
}

// Addrs maps a member's name to its QUIC address.
type Addrs func(name string) (addr string, ok bool)

// LimitError is a blob refused because the store is full or the blob too
// large. Steps that meet it fail with abi.CodeLimit.
type LimitError struct {
	What       string
	Got, Limit int64
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("blob %s: %d bytes needed, limit %d", e.What, e.Got, e.Limit)
}

// HostCode is the failure code of a step that meets the error.
func (e *LimitError) HostCode() uint32 { return abi.CodeLimit }

// FetchError is a blob that could not be had from its holder: unreachable,
// not there, or bytes that do not match the reference (Mismatch).
type FetchError struct {
	Ref      lp.Ref
	Holder   string
	Mismatch bool
	Err      error
}

func (e *FetchError) Error() string {
	return fmt.Sprintf("blob %s from %s: %v", e.Ref, e.Holder, e.Err)
}

func (e *FetchError) Unwrap() error { return e.Err }

// HostCode is the failure code of a step that meets the error.
func (e *FetchError) HostCode() uint32 { return abi.CodeUnavailable }

// ErrMismatch is wrapped by a FetchError whose bytes failed verification.
var ErrMismatch = errors.New("bytes do not match the reference: refused")

// Stats counts a store's traffic, for benchmarks and status.
type Stats struct {
	Fetched, FetchedBytes int64 // blobs (bytes) fetched from peers
	Served, ServedBytes   int64 // blobs (bytes) sent to peers that asked
	Pushed, PushedBytes   int64 // blobs (bytes) handed on at migrations
	Taken, TakenBytes     int64 // blobs (bytes) peers handed to this store
	Refused               int64 // fetched blobs refused by verification
	Blobs                 int   // blobs kept now
	Bytes                 int64 // their bytes
}

// Store keeps one member's blobs. It is safe for concurrent use.
type Store struct {
	name  string
	cfg   Config
	net   Net
	addrs Addrs
	log   *slog.Logger
	now   func() time.Time

	mu    sync.Mutex
	items map[lp.Hash]*item
	byLP  map[lp.ID][]lp.Hash
	used  int64
	calls map[lp.Hash]*fetchCall

	fetched, fetchedBytes, served, servedBytes atomic.Int64
	pushed, pushedBytes, taken, takenBytes     atomic.Int64
	refused                                    atomic.Int64
}

type item struct {
	data   []byte
	owners map[lp.ID]int64 // process -> Unix nanoseconds it is kept until
	last   time.Time       // last use, for dropping unowned copies
}

type fetchCall struct {
	done chan struct{}
	data []byte
	err  error
}

// New returns a store for the member called name. net and addrs may be nil
// for a store that never talks to peers (tsubame exec).
func New(name string, c Config, net Net, addrs Addrs, log *slog.Logger) *Store {
	if log == nil {
		log = slog.Default()
	}
	return &Store{name: name, cfg: c.withDefaults(), net: net, addrs: addrs, log: log, now: time.Now,
		items: map[lp.Hash]*item{}, byLP: map[lp.ID][]lp.Hash{}, calls: map[lp.Hash]*fetchCall{}}
}

// Name is the member this store belongs to: the Holder of the blobs it makes.
func (s *Store) Name() string { return s.name }

// Threshold is the size above which values go by reference.
func (s *Store) Threshold() int { return s.cfg.Threshold }

// MaxBlob is the largest blob kept.
func (s *Store) MaxBlob() int { return s.cfg.MaxBlob }

// until is how long the blobs of p are kept for it.
func (s *Store) until(p *lp.Process) int64 {
	if p.Deadline != 0 {
		return p.Deadline
	}
	return s.now().Add(s.cfg.Retention).UnixNano()
}

// Put keeps data (copied) for p and returns its row, held here.
func (s *Store) Put(_ context.Context, p *lp.Process, data []byte) (lp.Blob, error) {
	ref := lp.RefOf(data)
	if err := s.add(ref, data, true, p.ID, s.until(p)); err != nil {
		return lp.Blob{}, err
	}
	return lp.Blob{Ref: ref, Holder: s.name}, nil
}

// add keeps data under ref, owned by id until the given time (owned false:
// a cached copy nobody owns). copyData copies data first.
func (s *Store) add(ref lp.Ref, data []byte, copyData bool, id lp.ID, until int64) error {
	owned := until != 0
	if int64(len(data)) > int64(s.cfg.MaxBlob) {
		return &LimitError{What: "size", Got: int64(len(data)), Limit: int64(s.cfg.MaxBlob)}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	it := s.items[ref.Hash]
	if it == nil {
		if err := s.makeRoom(int64(len(data))); err != nil {
			return err
		}
		if copyData {
			data = append([]byte(nil), data...)
		}
		it = &item{data: data, owners: map[lp.ID]int64{}}
		s.items[ref.Hash] = it
		s.used += int64(len(data))
	}
	it.last = s.now()
	if owned {
		if _, ok := it.owners[id]; !ok {
			s.byLP[id] = append(s.byLP[id], ref.Hash)
		}
		it.owners[id] = max(it.owners[id], until)
	}
	return nil
}

// makeRoom frees n bytes if it can: blobs whose owners have all ended or
// left go first, least recently used first. Called with s.mu held.
func (s *Store) makeRoom(n int64) error {
	if s.used+n <= s.cfg.MaxMemory {
		return nil
	}
	now := s.now().UnixNano()
	var free []lp.Hash
	for h, it := range s.items {
		if !it.pinned(now) {
			free = append(free, h)
		}
	}
	sort.Slice(free, func(i, j int) bool { return s.items[free[i]].last.Before(s.items[free[j]].last) })
	for _, h := range free {
		if s.used+n <= s.cfg.MaxMemory {
			break
		}
		s.drop(h)
	}
	if s.used+n > s.cfg.MaxMemory {
		return &LimitError{What: "memory of " + s.name + " (blobs of live processes)", Got: s.used + n, Limit: s.cfg.MaxMemory}
	}
	return nil
}

func (it *item) pinned(now int64) bool {
	for _, until := range it.owners {
		if until > now {
			return true
		}
	}
	return false
}

func (s *Store) drop(h lp.Hash) {
	it := s.items[h]
	if it == nil {
		return
	}
	s.used -= int64(len(it.data))
	delete(s.items, h)
}

// local returns the bytes of ref if they are here.
func (s *Store) local(ref lp.Ref) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	it := s.items[ref.Hash]
	if it == nil || uint64(len(it.data)) != ref.Size {
		return nil, false
	}
	it.last = s.now()
	return it.data, true
}

// Has reports whether the bytes of ref are here.
func (s *Store) Has(ref lp.Ref) bool {
	_, ok := s.local(ref)
	return ok
}

// Get returns the bytes b addresses: from this store, or fetched from
// b.Holder and verified. Concurrent Gets of one blob share one fetch. The
// fetched copy is cached here, unowned.
func (s *Store) Get(ctx context.Context, _ *lp.Process, b lp.Blob) ([]byte, error) {
	if data, ok := s.local(b.Ref); ok {
		return data, nil
	}
	if b.Holder == "" || b.Holder == s.name || s.net == nil {
		return nil, &FetchError{Ref: b.Ref, Holder: cmp(b.Holder, "nobody"), Err: errors.New("not kept here and no other holder is known")}
	}
	s.mu.Lock()
	c := s.calls[b.Hash]
	if c == nil {
		c = &fetchCall{done: make(chan struct{})}
		s.calls[b.Hash] = c
		s.mu.Unlock()
		c.data, c.err = s.fetch(ctx, b)
		s.mu.Lock()
		delete(s.calls, b.Hash)
		close(c.done)
	}
	s.mu.Unlock()
	select {
	case <-c.done:
	case <-ctx.Done():
		return nil, &FetchError{Ref: b.Ref, Holder: b.Holder, Err: ctx.Err()}
	}
	return c.data, c.err
}

func cmp(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (s *Store) fetch(ctx context.Context, b lp.Blob) ([]byte, error) {
	if b.Size > uint64(s.cfg.MaxBlob) {
		return nil, &LimitError{What: "size", Got: int64(min(b.Size, 1<<62)), Limit: int64(s.cfg.MaxBlob)}
	}
	addr, ok := s.addrs(b.Holder)
	if !ok {
		return nil, &FetchError{Ref: b.Ref, Holder: b.Holder, Err: errors.New("holder is not a live member")}
	}
	data, err := s.net.Request(ctx, addr, transport.RequestBlob, b.Ref.Bytes(), int(b.Size))
	if err != nil {
		return nil, &FetchError{Ref: b.Ref, Holder: b.Holder, Err: err}
	}
	if !b.Ref.Verify(data) {
		s.refused.Add(1)
		s.log.Warn("blob refused: bytes from holder do not match the reference", "blob", b.Ref, "holder", b.Holder, "got", len(data))
		return nil, &FetchError{Ref: b.Ref, Holder: b.Holder, Mismatch: true, Err: ErrMismatch}
	}
	s.fetched.Add(1)
	s.fetchedBytes.Add(int64(len(data)))
	if err := s.add(b.Ref, data, false, lp.ID{}, 0); err != nil {
		// Too full to cache: the step still gets its bytes.
		s.log.Debug("fetched blob not cached", "blob", b.Ref, "err", err)
	}
	return data, nil
}

// Release ends process id's hold on its blobs here: it finished, or it
// left this member and the blobs were handed on. They stay as unowned
// copies until memory is needed or Retention passes.
func (s *Store) Release(id lp.ID) { s.release(id, false) }

// release ends id's hold; free also drops the blobs nobody else holds.
func (s *Store) release(id lp.ID, free bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, h := range s.byLP[id] {
		if it := s.items[h]; it != nil {
			delete(it.owners, id)
			if free && len(it.owners) == 0 {
				s.drop(h)
			}
		}
	}
	delete(s.byLP, id)
}

// Sweep frees what has outlived its processes: blobs whose owners' deadlines
// have all passed and unowned copies unused for Retention. It returns how
// many blobs it freed.
func (s *Store) Sweep() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	n := 0
	for id, hs := range s.byLP {
		live := false
		for _, h := range hs {
			it := s.items[h]
			if it == nil {
				continue
			}
			if until, ok := it.owners[id]; ok && until <= now.UnixNano() {
				delete(it.owners, id)
				if len(it.owners) == 0 {
					// Past its process's deadline nobody reads it.
					s.drop(h)
					n++
				}
			} else if ok {
				live = true
			}
		}
		if !live {
			delete(s.byLP, id)
		}
	}
	for h, it := range s.items {
		if len(it.owners) == 0 && now.Sub(it.last) >= s.cfg.Retention {
			s.drop(h)
			n++
		}
	}
	return n
}

// Free ends process id's hold on its blobs, as Release does, and frees those
// no other process holds: the process is over (its origin answered).
func (s *Store) Free(id lp.ID) { s.release(id, true) }

// Run sweeps every interval until ctx ends.
func (s *Store) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.Sweep()
		}
	}
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	n, used := len(s.items), s.used
	s.mu.Unlock()
	return Stats{
		Fetched: s.fetched.Load(), FetchedBytes: s.fetchedBytes.Load(),
		Served: s.served.Load(), ServedBytes: s.servedBytes.Load(),
		Pushed: s.pushed.Load(), PushedBytes: s.pushedBytes.Load(),
		Taken: s.taken.Load(), TakenBytes: s.takenBytes.Load(),
		Refused: s.refused.Load(), Blobs: n, Bytes: used,
	}
}

// Handles reports whether kind is a blob request (HandleRequest's).
func Handles(kind transport.RequestKind) bool {
	return kind == transport.RequestBlob || kind == transport.RequestBlobPut
}

// HandleRequest answers a peer's RequestBlob and RequestBlobPut.
func (s *Store) HandleRequest(_ context.Context, from string, kind transport.RequestKind, body []byte) ([]byte, error) {
	switch kind {
	case transport.RequestBlob:
		ref, err := lp.ParseRef(body)
		if err != nil {
			return nil, &transport.RequestError{Status: transport.StatusFailed, Msg: err.Error()}
		}
		data, ok := s.local(ref)
		if !ok {
			return nil, &transport.RequestError{Status: transport.StatusNotFound, Msg: fmt.Sprintf("%s does not hold blob %s", s.name, ref)}
		}
		s.served.Add(1)
		s.servedBytes.Add(int64(len(data)))
		return data, nil
	case transport.RequestBlobPut:
		if len(body) < putHeader {
			return nil, &transport.RequestError{Status: transport.StatusFailed, Msg: fmt.Sprintf("blob put of %d bytes is shorter than its %d-byte header", len(body), putHeader)}
		}
		var id lp.ID
		copy(id[:], body)
		until := int64(binary.LittleEndian.Uint64(body[len(id):]))
		ref, _ := lp.ParseRef(body[len(id)+8 : putHeader])
		data := body[putHeader:]
		if !ref.Verify(data) {
			return nil, &transport.RequestError{Status: transport.StatusFailed, Msg: fmt.Sprintf("blob %s from %s: %v", ref, from, ErrMismatch)}
		}
		if until == 0 {
			until = s.now().Add(s.cfg.Retention).UnixNano()
		}
		if err := s.add(ref, data, false, id, until); err != nil { // body is ours to keep
			return nil, &transport.RequestError{Status: transport.StatusFailed, Msg: err.Error()}
		}
		s.taken.Add(1)
		s.takenBytes.Add(int64(len(data)))
		return nil, nil
	}
	return nil, &transport.RequestError{Status: transport.StatusUnsupported, Msg: kind.String()}
}

// Handoff is called before p migrates from this member to the member named
// to. Every blob of p held here goes where it must be for the holder rule
// (a blob is held by p's origin or by the member holding p): to the
// destination if the next step can read it through its entry (the
// destination would fetch it anyway) or if the destination is the origin,
// else to the origin. The rows of p are updated; undo puts them back if
// the migration then fails (the copies sent stay as the receivers' cache).
// An error means a blob could not be handed on: p must not leave.
func (s *Store) Handoff(ctx context.Context, p *lp.Process, to string) (undo func(), err error) {
	var mine []int
	for i := range p.Blobs {
		if p.Blobs[i].Holder == s.name {
			mine = append(mine, i)
		}
	}
	if len(mine) == 0 {
		return func() {}, nil
	}
	next := map[lp.Hash]bool{}
	p.NextRefs(func(r lp.Ref) { next[r.Hash] = true })
	until := p.Deadline
	moved := make([]int, 0, len(mine))
	undo = func() {
		for _, i := range moved {
			p.Blobs[i].Holder = s.name
		}
	}
	for _, i := range mine {
		b := p.Blobs[i]
		dest := p.Origin
		if to == p.Origin || next[b.Hash] {
			dest = to
		}
		if dest == s.name {
			continue // this member is the origin: it keeps its own
		}
		if err := s.push(ctx, p.ID, until, b, dest); err != nil {
			undo()
			return nil, err
		}
		p.Blobs[i].Holder = dest
		moved = append(moved, i)
	}
	return undo, nil
}

func (s *Store) push(ctx context.Context, id lp.ID, until int64, b lp.Blob, dest string) error {
	data, ok := s.local(b.Ref)
	if !ok {
		return &FetchError{Ref: b.Ref, Holder: s.name, Err: errors.New("this member holds the blob for the process but lost it")}
	}
	if s.net == nil || s.addrs == nil {
		return &FetchError{Ref: b.Ref, Holder: dest, Err: errors.New("this store talks to no peers")}
	}
	addr, ok := s.addrs(dest)
	if !ok {
		return &FetchError{Ref: b.Ref, Holder: dest, Err: errors.New("not a live member")}
	}
	body := make([]byte, 0, putHeader+len(data))
	body = append(body, id[:]...)
	body = binary.LittleEndian.AppendUint64(body, uint64(until))
	body = b.Ref.Append(body)
	body = append(body, data...)
	if _, err := s.net.Request(ctx, addr, transport.RequestBlobPut, body, 0); err != nil {
		return &FetchError{Ref: b.Ref, Holder: dest, Err: fmt.Errorf("hand on: %w", err)}
	}
	s.pushed.Add(1)
	s.pushedBytes.Add(int64(len(data)))
	return nil
}
