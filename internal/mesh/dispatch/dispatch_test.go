package dispatch

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tsubame-rt/tsubame/internal/mesh/cluster"
	"github.com/tsubame-rt/tsubame/internal/mesh/sched"
	"github.com/tsubame-rt/tsubame/internal/mesh/transport"
	"github.com/tsubame-rt/tsubame/lp"
)

// memNet is an in-memory cluster: fresh holders, stale members, and a send
// answer per address.
type memNet struct {
	mu      sync.Mutex
	fresh   []cluster.Peer
	stale   []cluster.Peer
	answer  map[string]error // by address; missing: acknowledged
	sent    []string         // every address sent to, in order
	lookups int
	// freshAt > 0 moves stale to fresh on that call of Holders.
	freshAt int
}

func (m *memNet) Send(ctx context.Context, addr string, p *lp.Process) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sent = append(m.sent, addr)
	return m.answer[addr]
}

func (m *memNet) Holders(component string) []cluster.Peer {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.lookups++; m.lookups == m.freshAt {
		m.fresh, m.stale = append(m.fresh, m.stale...), nil
	}
	var out []cluster.Peer
	for _, p := range m.fresh {
		if p.Meta.Holds(component) {
			out = append(out, p)
		}
	}
	return out
}

func (m *memNet) Members() []cluster.Peer {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append(slices.Clone(m.fresh), m.stale...)
}

func peer(name string, load float64) cluster.Peer {
	return cluster.Peer{Name: name, Updated: time.Unix(1, 0), Meta: cluster.Meta{
		QUIC: "addr-" + name, Load: load, Workers: 1, Components: []cluster.Component{{Name: "c"}},
	}}
}

// byName picks the candidate listed first in order: tests know the picks.
type byName []string

func (o byName) Pick(cs []sched.Candidate) int {
	for _, want := range o {
		for i, c := range cs {
			if c.Name == want {
				return i
			}
		}
	}
	return -1
}

func newLP() *lp.Process { return lp.New("gw", "c", "k", []byte("x")) }

func TestDispatchReplicksAfterFailure(t *testing.T) {
	m := &memNet{fresh: []cluster.Peer{peer("a", 0), peer("b", 0), peer("c", 0)},
		answer: map[string]error{"addr-a": &transport.Refusal{Reason: transport.Overloaded}}}
	d := New(Config{Policy: byName{"a", "b", "c"}}, m, m)
	got, err := d.Dispatch(context.Background(), newLP(), time.Time{})
	if err != nil || got.Name != "b" {
		t.Fatalf("Dispatch = %q, %v; want b after a refused", got.Name, err)
	}
	if !slices.Equal(m.sent, []string{"addr-a", "addr-b"}) {
		t.Errorf("sent %v, want a then b", m.sent)
	}
}

func TestDispatchAttemptsAndFailed(t *testing.T) {
	down := errors.New("unreachable")
	m := &memNet{fresh: []cluster.Peer{peer("a", 0), peer("b", 0), peer("c", 0)},
		answer: map[string]error{"addr-a": down, "addr-b": down, "addr-c": down}}
	d := New(Config{Policy: byName{"a", "b", "c"}, Attempts: 2}, m, m)
	_, err := d.Dispatch(context.Background(), newLP(), time.Time{})
	var f *Failed
	if !errors.As(err, &f) || len(f.Tries) != 2 || f.Tries[1].Peer != "b" || !errors.Is(err, down) {
		t.Fatalf("err = %v, want a *Failed of a and b (Attempts 2)", err)
	}
	if f.Last() != down {
		t.Errorf("Last = %v", f.Last())
	}
}

func TestDispatchTooLargeIsFinal(t *testing.T) {
	big := &transport.ProtocolError{Code: transport.ErrFrameTooLarge, Msg: "too large"}
	m := &memNet{fresh: []cluster.Peer{peer("a", 0), peer("b", 0)}, answer: map[string]error{"addr-a": big}}
	d := New(Config{Policy: byName{"a", "b"}}, m, m)
	if _, err := d.Dispatch(context.Background(), newLP(), time.Time{}); !TooLarge(err) {
		t.Fatalf("err = %v, want too large", err)
	}
	if len(m.sent) != 1 {
		t.Errorf("sent %v: a too-large answer is final", m.sent)
	}
	d = New(Config{Policy: byName{"a", "b"}, MaxBytes: 16}, m, m)
	if _, err := d.Dispatch(context.Background(), newLP(), time.Time{}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("over MaxBytes: err = %v, want ErrTooLarge", err)
	}
	if len(m.sent) != 1 {
		t.Errorf("an LP over MaxBytes was sent: %v", m.sent)
	}
}

func TestDispatchNoHolderNoFresh(t *testing.T) {
	gw := peer("gw", 0)
	gw.Meta.Gateway = true // a gateway listing c is no holder
	m := &memNet{stale: []cluster.Peer{gw}}
	d := New(Config{Policy: byName{"a"}}, m, m)
	if _, err := d.Dispatch(context.Background(), newLP(), time.Time{}); !errors.Is(err, ErrNoHolder) {
		t.Fatalf("nobody holds c: %v, want ErrNoHolder", err)
	}
	m.stale = append(m.stale, peer("a", 0))
	if _, err := d.Dispatch(context.Background(), newLP(), time.Time{}); !errors.Is(err, ErrNoFresh) {
		t.Fatalf("a stale holder, no wait: %v, want ErrNoFresh", err)
	}
	m.fresh, m.stale, m.lookups, m.freshAt = nil, []cluster.Peer{peer("a", 0)}, 0, 3
	d = New(Config{Policy: byName{"a"}, WaitFresh: time.Minute}, m, m)
	if got, err := d.Dispatch(context.Background(), newLP(), time.Time{}); err != nil || got.Name != "a" {
		t.Fatalf("a stale holder turning fresh: %q, %v", got.Name, err)
	}
	m.fresh, m.stale = nil, []cluster.Peer{peer("a", 0)}
	until := time.Now().Add(50 * time.Millisecond)
	if _, err := d.Dispatch(context.Background(), newLP(), until); !errors.Is(err, ErrNoFresh) {
		t.Fatalf("a holder that stays stale: %v, want ErrNoFresh once until passes", err)
	}
}

// In flight means sent since the holder's last report: a new report starts
// the count again.
func TestInFlightSinceReport(t *testing.T) {
	a := peer("a", 0.5)
	m := &memNet{fresh: []cluster.Peer{a}}
	d := New(Config{Policy: byName{"a"}}, m, m)
	for range 3 {
		if _, err := d.Dispatch(context.Background(), newLP(), time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	if c := d.Candidates([]cluster.Peer{a})[0]; c.InFlight != 3 || c.Effective() != 3.5 {
		t.Errorf("after 3 sends: %+v, want InFlight 3", c)
	}
	a.Updated = a.Updated.Add(time.Second)
	if c := d.Candidates([]cluster.Peer{a})[0]; c.InFlight != 0 {
		t.Errorf("after a new report: InFlight %d, want 0", c.InFlight)
	}
	if got := d.Sent()["a"]; got != 3 {
		t.Errorf("Sent[a] = %d, want 3", got)
	}
	if got := d.MeanLoad([]cluster.Peer{a}); got != 0.5 {
		t.Errorf("MeanLoad = %v, want 0.5", got)
	}
}
