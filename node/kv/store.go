package kv

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/tsubame-rt/tsubame/abi"
	"github.com/tsubame-rt/tsubame/internal/adminapi"
	"github.com/tsubame-rt/tsubame/wasmhost"
)

// Backend stores the buckets of one [kv.backends] entry.
type Backend interface {
	// Apply performs op on bucket and returns its result. With j non-nil it
	// first looks j up: if the journal holds a record under j.Key it
	// returns that record's result and applies nothing (or, if the record
	// was made by a different operation, a result whose Err wraps
	// wasmhost.ErrKVReplay); otherwise it applies op and records the result
	// under j.Key until j.Expires, atomically with the operation. A
	// backend that cannot answer returns abi.KVUnavailable having applied
	// nothing, as far as it can tell.
	Apply(ctx context.Context, bucket string, op *wasmhost.KVOp, j *Journal) wasmhost.KVResult
	// List returns up to limit keys of bucket greater than after, in byte
	// order for memory and in no order for Redis (see docs/kv.md).
	List(ctx context.Context, bucket, after string, limit int) ([]string, error)
	// Ping reports whether the backend answers.
	Ping(ctx context.Context) error
	// Type is "memory" or "redis".
	Type() string
	Close() error
}

// Journal names one operation's journal record.
type Journal struct {
	// Step and Seq are the step's identity and the operation's number in
	// the step: together the record's key.
	Step wasmhost.StepID
	Seq  int
	// Print is a fingerprint of the operation: a re-run making a different
	// operation at the same position is caught.
	Print uint64
	// Expires is when the record may be dropped.
	Expires time.Time
}

// Key is the record's key as text: STEP#SEQ.
func (j *Journal) Key() string { return fmt.Sprintf("%s#%d", j.Step, j.Seq) }

// fingerprint hashes everything that makes op the operation it is.
func fingerprint(op *wasmhost.KVOp) uint64 {
	h := fnv.New64a()
	var b [8 + 8 + 1 + 1]byte
	b[0] = byte(op.Kind)
	if op.ExpectAbsent {
		b[1] = 1
	}
	binary.LittleEndian.PutUint64(b[2:], uint64(op.Delta))
	binary.LittleEndian.PutUint64(b[10:], uint64(op.TTL))
	h.Write(b[:])
	for _, p := range [][]byte{op.Key, op.Value, op.Expect} {
		binary.LittleEndian.PutUint32(b[:4], uint32(len(p)))
		h.Write(b[:4])
		h.Write(p)
	}
	return h.Sum64()
}

// replayError is the Err of a result whose journal record was made by a
// different operation.
func replayError(op *wasmhost.KVOp, j *Journal) error {
	return fmt.Errorf("kv_%s on key %q is not the operation the first run made at %s: %w", op.Kind, truncate(op.Key, 64), j.Key(), wasmhost.ErrKVReplay)
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// Store is a node's KV capability: its backends, the buckets declared on
// them and the grants. It implements wasmhost.KV; one Store may serve every
// node of a process (`tsubame demo`). It is safe for concurrent use.
type Store struct {
	cfg      Config
	log      *slog.Logger
	backends map[string]*backend
	buckets  map[string]bucketSpec // declared buckets
	grants   map[string]map[string]bool

	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// bucketSpec is where a bucket lives and how it is used.
type bucketSpec struct {
	backend string
	journal bool
}

// backend is a Backend and what the Store last learned of its health.
type backend struct {
	Backend
	name string
	mu   sync.Mutex
	err  error // nil when the last ping or operation succeeded
}

func (b *backend) health() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// setHealth records the outcome of a ping or an operation and logs a change.
func (b *backend) setHealth(log *slog.Logger, err error) {
	b.mu.Lock()
	was := b.err
	b.err = err
	b.mu.Unlock()
	switch {
	case was == nil && err != nil:
		log.Warn("kv backend unavailable", "backend", b.name, "type", b.Type(), "err", err)
	case was != nil && err == nil:
		log.Info("kv backend available again", "backend", b.name, "type", b.Type())
	}
}

// Options are what a program embedding a Store passes beside Config.
type Options struct {
	// Logger receives health changes. Default slog.Default().
	Logger *slog.Logger
	// PingInterval is how often Redis backends are pinged for Status.
	// Default 1s.
	PingInterval time.Duration
}

// New opens every backend of c. A Redis backend that does not answer yet is
// no error: its buckets answer abi.KVUnavailable until it does.
func New(c Config, o Options) (*Store, error) {
	if err := c.Validate("kv"); err != nil {
		return nil, err
	}
	c = c.withDefaults()
	s := &Store{cfg: c, log: o.Logger, backends: map[string]*backend{}, buckets: map[string]bucketSpec{},
		grants: map[string]map[string]bool{}, stop: make(chan struct{})}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.backends[Memory] = &backend{Backend: NewMemory(), name: Memory}
	for _, name := range sortedKeys(c.Backends) {
		bc := c.Backends[name]
		var b Backend
		switch bc.Type {
		case Memory:
			b = NewMemory()
		case Redis:
			r, err := NewRedis(bc)
			if err != nil {
				s.Close()
				return nil, fmt.Errorf("kv.backends.%s: %w", name, err)
			}
			b = r
		}
		s.backends[name] = &backend{Backend: b, name: name}
	}
	for name, bc := range c.Buckets {
		spec := bucketSpec{backend: bc.Backend, journal: bc.Journal == nil || *bc.Journal}
		if spec.backend == "" {
			spec.backend = c.DefaultBackend
		}
		s.buckets[name] = spec
		for _, comp := range bc.Grant {
			if s.grants[comp] == nil {
				s.grants[comp] = map[string]bool{}
			}
			s.grants[comp][name] = true
		}
	}
	every := o.PingInterval
	if every <= 0 {
		every = time.Second
	}
	s.wg.Add(1)
	go s.pingLoop(every)
	return s, nil
}

// Close stops the pings and closes every backend.
func (s *Store) Close() error {
	var errs []error
	s.once.Do(func() {
		close(s.stop)
		s.wg.Wait()
		for _, b := range s.backends {
			if err := b.Close(); err != nil {
				errs = append(errs, fmt.Errorf("kv backend %s: %w", b.name, err))
			}
		}
	})
	return errors.Join(errs...)
}

func (s *Store) pingLoop(every time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		s.pingAll()
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
	}
}

func (s *Store) pingAll() {
	for _, b := range s.backends {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		b.setHealth(s.log, b.Ping(ctx))
		cancel()
	}
}

// spec returns where bucket lives: a declared bucket, or else the private
// bucket of the component of the same name on the default backend.
func (s *Store) spec(bucket string) bucketSpec {
	if sp, ok := s.buckets[bucket]; ok {
		return sp
	}
	return bucketSpec{backend: s.cfg.DefaultBackend, journal: true}
}

// Granted reports whether component may use bucket: its private bucket
// (named after it) unless a declared bucket of that name is not granted to
// it, and every declared bucket granted to it.
func (s *Store) Granted(component, bucket string) bool {
	if _, declared := s.buckets[bucket]; declared {
		return s.grants[component][bucket]
	}
	return bucket == component
}

// Do implements wasmhost.KV: it resolves the bucket against the
// component's grants and applies the operation, through the journal unless
// the bucket turned it off.
func (s *Store) Do(ctx context.Context, op *wasmhost.KVOp) wasmhost.KVResult {
	bucket := op.Bucket
	if bucket == "" {
		bucket = op.Component
	}
	if !s.Granted(op.Component, bucket) {
		return wasmhost.KVResult{Status: abi.KVNotGranted,
			Err: fmt.Errorf("component %s was not granted bucket %q (see [kv.buckets] in the node's config)", op.Component, bucket)}
	}
	sp := s.spec(bucket)
	b := s.backends[sp.backend]
	var j *Journal
	if sp.journal {
		j = &Journal{Step: op.Step, Seq: op.Seq, Print: fingerprint(op), Expires: s.journalExpiry(op.Step.Deadline)}
	}
	r := b.Apply(ctx, bucket, op, j)
	if r.Status == abi.KVUnavailable {
		b.setHealth(s.log, r.Err)
	}
	return r
}

// journalExpiry is when a step's journal may go: the LP's deadline plus the
// margin, or JournalKeep from now for an LP without one.
func (s *Store) journalExpiry(deadline int64) time.Time {
	now := time.Now()
	if deadline == 0 {
		return now.Add(s.cfg.JournalKeep)
	}
	t := time.Unix(0, deadline).Add(s.cfg.JournalMargin)
	if t.Before(now.Add(s.cfg.JournalMargin)) {
		t = now.Add(s.cfg.JournalMargin) // past its deadline already: keep the margin
	}
	return t
}

// Admin operations: an operator's access to any bucket (tsubame kv), with
// no grant and no journal.

// Get returns bucket's value of key; found is false when there is none.
func (s *Store) Get(ctx context.Context, bucket string, key []byte) (val []byte, found bool, err error) {
	r, err := s.admin(ctx, bucket, &wasmhost.KVOp{Kind: wasmhost.KVGet, Key: key})
	return r.Value, err == nil && r.Status == abi.KVOK, err
}

// Set stores val under key in bucket, for ttl (0: forever).
func (s *Store) Set(ctx context.Context, bucket string, key, val []byte, ttl time.Duration) error {
	_, err := s.admin(ctx, bucket, &wasmhost.KVOp{Kind: wasmhost.KVSet, Key: key, Value: val, TTL: ttl})
	return err
}

// Del removes key from bucket; found is false when there was none.
func (s *Store) Del(ctx context.Context, bucket string, key []byte) (found bool, err error) {
	r, err := s.admin(ctx, bucket, &wasmhost.KVOp{Kind: wasmhost.KVDel, Key: key})
	return err == nil && r.Status == abi.KVOK, err
}

// List returns up to limit keys of bucket after the key after.
func (s *Store) List(ctx context.Context, bucket, after string, limit int) ([]string, error) {
	if !abi.ValidName(bucket) {
		return nil, badRequest("%q is not a valid bucket name", bucket)
	}
	return s.backends[s.spec(bucket).backend].List(ctx, bucket, after, limit)
}

// RequestError is an operator's request that breaks a rule of ABI.md §10
// (a bucket name, a key or value size): the admin API answers it with 400.
type RequestError struct{ msg string }

func (e *RequestError) Error() string { return e.msg }

// HTTPStatus is the status the admin API answers with.
func (e *RequestError) HTTPStatus() int { return 400 }

func badRequest(format string, args ...any) error {
	return &RequestError{msg: fmt.Sprintf(format, args...)}
}

func (s *Store) admin(ctx context.Context, bucket string, op *wasmhost.KVOp) (wasmhost.KVResult, error) {
	switch {
	case !abi.ValidName(bucket):
		return wasmhost.KVResult{}, badRequest("%q is not a valid bucket name", bucket)
	case len(op.Key) == 0:
		return wasmhost.KVResult{}, badRequest("empty key")
	case len(op.Key) > abi.MaxKVKey:
		return wasmhost.KVResult{}, badRequest("key of %d bytes is over the limit of %d", len(op.Key), abi.MaxKVKey)
	case len(op.Value) > abi.MaxKVValue:
		return wasmhost.KVResult{}, badRequest("value of %d bytes is over the limit of %d", len(op.Value), abi.MaxKVValue)
	}
	r := s.backends[s.spec(bucket).backend].Apply(ctx, bucket, op, nil)
	switch r.Status {
	case abi.KVOK, abi.KVNotFound:
		return r, nil
	case abi.KVUnavailable:
		return r, fmt.Errorf("bucket %s: backend unavailable: %w", bucket, r.Err)
	}
	return r, fmt.Errorf("bucket %s: %s: %v", bucket, abi.KVStatusName(r.Status), r.Err)
}

// BucketStatus is one bucket's line in a node's status.
type BucketStatus = adminapi.BucketStatus

// Status lists the declared buckets and the private buckets of components,
// with each backend's health as of its last ping or operation.
func (s *Store) Status(components []string) []BucketStatus {
	var out []BucketStatus
	add := func(name string, granted []string, private bool) {
		sp := s.spec(name)
		b := s.backends[sp.backend]
		st := BucketStatus{Name: name, Backend: sp.backend, Type: b.Type(), Journal: sp.journal,
			Granted: granted, Healthy: true, Private: private}
		if err := b.health(); err != nil {
			st.Healthy, st.Error = false, err.Error()
		}
		out = append(out, st)
	}
	for _, name := range sortedKeys(s.buckets) {
		var granted []string
		for comp, bs := range s.grants {
			if bs[name] {
				granted = append(granted, comp)
			}
		}
		sort.Strings(granted)
		add(name, granted, false)
	}
	for _, comp := range components {
		if _, declared := s.buckets[comp]; !declared {
			add(comp, []string{comp}, true)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

var _ wasmhost.KV = (*Store)(nil)
