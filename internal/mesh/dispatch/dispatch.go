// Package dispatch hands an LP to a holder of its active entry's component:
// pick a live holder with the scheduler policy, send, and when the send fails
// drop that holder and pick again. The gateway dispatches a request's first
// step with it and the node's runner every later hop, so both count work in
// flight the same way and give up for the same reasons.
//
// A Dispatcher never runs a step, never serves HTTP and never resends an LP a
// holder has acknowledged: what happens after a holder owns the LP (a reply,
// a timeout, a resend) is the caller's business.
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/tsubame-rt/tsubame/internal/mesh/cluster"
	"github.com/tsubame-rt/tsubame/internal/mesh/sched"
	"github.com/tsubame-rt/tsubame/internal/mesh/transport"
	"github.com/tsubame-rt/tsubame/lp"
)

// Sender migrates an LP to the member at addr and returns once it owns it
// (nil), refused it (a *transport.Refusal) or could not be reached:
// transport.Transport over QUIC; an in-memory network in unit tests.
type Sender interface {
	Send(ctx context.Context, addr string, p *lp.Process) error
}

// Directory is the cluster view dispatch needs: cluster.Cluster.
type Directory interface {
	// Holders are the live nodes with fresh load reports that hold
	// component: the only ones dispatch picks from.
	Holders(component string) []cluster.Peer
	// Members are every live member, fresh report or not.
	Members() []cluster.Peer
}

// Config is how a Dispatcher picks and sends. Zero fields take the defaults
// named beside them.
type Config struct {
	// Policy picks among the holders. Required.
	Policy sched.Policy
	// Attempts is how many holders one Dispatch tries at most. 0: every
	// holder, within the call's deadline.
	Attempts int
	// SendTimeout bounds one send, handshake included (default
	// DefaultSendTimeout). A holder that has died without membership
	// noticing stays silent; the bound leaves time to try the others.
	SendTimeout time.Duration
	// WaitFresh is how long Dispatch waits for a holder's report to become
	// fresh again when live nodes hold the component but none has a fresh
	// report (a node stalled by a GC pause or a busy host is back within a
	// report interval or two). 0: fail at once with ErrNoFresh.
	WaitFresh time.Duration
	// MaxBytes is the largest LP, in wire bytes, offered to a holder
	// (default lp.DefaultLimits.MaxTotal): members share their limits, so a
	// larger one would only be refused by every holder in turn.
	MaxBytes int
	// Logger gets a debug line per failed send; nil discards.
	Logger *slog.Logger
	// Observe, if set, hears of every send: the LP, how long until the
	// holder acknowledged or the send failed, and the error (metrics).
	Observe func(p *lp.Process, took time.Duration, err error)
}

// DefaultSendTimeout: a hop is ~100us and a handshake ~1ms on a LAN, and a
// receiver acknowledges as soon as the LP is queued, so a holder that takes a
// second is as good as gone.
const DefaultSendTimeout = time.Second

// freshPoll is how often a wait for a fresh holder looks again: a report
// interval (100ms by default) sees a few polls, each a map walk.
const freshPoll = 25 * time.Millisecond

var (
	// ErrNoHolder: no live node holds the component.
	ErrNoHolder = errors.New("no live node holds the component")
	// ErrNoFresh: live nodes hold the component, but none reported its
	// load recently enough to be picked (within WaitFresh, if set).
	ErrNoFresh = errors.New("no holder of the component has a fresh load report")
	// ErrNoPick: the policy picked none of the holders.
	ErrNoPick = errors.New("the scheduler picked no holder")
	// ErrTooLarge: the LP is over MaxBytes.
	ErrTooLarge = errors.New("LP too large")
)

// Failed is a Dispatch in which every holder tried failed.
type Failed struct {
	Tries []Try
}

// Try is one holder's failure.
type Try struct {
	Peer string
	Err  error
}

// Error lists every try as "peer: err", one a line.
func (e *Failed) Error() string {
	errs := make([]error, len(e.Tries))
	for i, t := range e.Tries {
		errs[i] = fmt.Errorf("%s: %w", t.Peer, t.Err)
	}
	return errors.Join(errs...).Error()
}

// Unwrap gives each try's error, for errors.Is and errors.As.
func (e *Failed) Unwrap() []error {
	errs := make([]error, len(e.Tries))
	for i, t := range e.Tries {
		errs[i] = t.Err
	}
	return errs
}

// Last is the last holder's error.
func (e *Failed) Last() error { return e.Tries[len(e.Tries)-1].Err }

// TooLarge reports whether err says an LP is larger than its receiver takes:
// ErrTooLarge, or a holder's ERROR frame saying so. Another holder would say
// the same.
func TooLarge(err error) bool {
	var pe *transport.ProtocolError
	return errors.Is(err, ErrTooLarge) || errors.As(err, &pe) && pe.Code == transport.ErrFrameTooLarge
}

// HeldByLive reports whether any live node (not a gateway), fresh report or
// not, holds component.
func HeldByLive(dir Directory, component string) bool {
	for _, m := range dir.Members() {
		if !m.Meta.Gateway && m.Meta.Holds(component) {
			return true
		}
	}
	return false
}

// Dispatcher picks holders and sends LPs to them. It is safe for concurrent
// use.
type Dispatcher struct {
	cfg Config
	net Sender
	dir Directory
	log *slog.Logger

	mu     sync.Mutex
	flight map[string]*peerFlight
}

// peerFlight counts LPs sent to one peer since its last load report: work
// the report cannot show yet, which the policy adds to its load.
type peerFlight struct {
	reportAt time.Time
	sinceRep int
	total    uint64
}

// New returns a Dispatcher sending over net and picking from dir.
func New(c Config, net Sender, dir Directory) *Dispatcher {
	if c.SendTimeout <= 0 {
		c.SendTimeout = DefaultSendTimeout
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = lp.DefaultLimits.MaxTotal
	}
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Dispatcher{cfg: c, net: net, dir: dir, log: log, flight: map[string]*peerFlight{}}
}

// Candidates turns holders into scheduler candidates, each with the LPs
// sent to it since its report was taken as its InFlight.
func (d *Dispatcher) Candidates(holders []cluster.Peer) []sched.Candidate {
	out := make([]sched.Candidate, len(holders))
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, h := range holders {
		c := sched.Candidate{Name: h.Name, Load: h.Meta.Load, Workers: h.Meta.Workers}
		if f := d.flight[h.Name]; f != nil && f.reportAt.Equal(h.Updated) {
			c.InFlight = f.sinceRep
		}
		out[i] = c
	}
	return out
}

// MeanLoad is the mean effective load of holders (0 for none).
func (d *Dispatcher) MeanLoad(holders []cluster.Peer) float64 {
	if len(holders) == 0 {
		return 0
	}
	var sum float64
	for _, c := range d.Candidates(holders) {
		sum += c.Effective()
	}
	return sum / float64(len(holders))
}

// SendTo sends p to peer, bounded by SendTimeout, and counts it in flight
// there once peer owns it.
func (d *Dispatcher) SendTo(ctx context.Context, peer cluster.Peer, p *lp.Process) error {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.SendTimeout)
	defer cancel()
	start := time.Now()
	err := d.net.Send(ctx, peer.Meta.QUIC, p)
	if d.cfg.Observe != nil {
		d.cfg.Observe(p, time.Since(start), err)
	}
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	f := d.flight[peer.Name]
	if f == nil {
		f = &peerFlight{}
		d.flight[peer.Name] = f
	}
	if !f.reportAt.Equal(peer.Updated) {
		f.reportAt, f.sinceRep = peer.Updated, 0
	}
	f.sinceRep++
	f.total++
	return nil
}

// Sent counts, by peer name, every LP sent there since the Dispatcher was
// made.
func (d *Dispatcher) Sent() map[string]uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]uint64, len(d.flight))
	for name, f := range d.flight {
		out[name] = f.total
	}
	return out
}

// Dispatch hands p to a holder of its active entry's component and returns
// the holder that owns it now. It tries holders the policy picks, dropping
// each that refuses or cannot be reached, until one acknowledges, Attempts
// are used up, none is left, ctx ends or until passes (zero: no bound but
// ctx). It fails with ErrTooLarge or a holder's too-large answer at once
// (TooLarge), ErrNoHolder, ErrNoFresh, ErrNoPick, ctx's error, or a *Failed
// listing each holder's failure.
func (d *Dispatcher) Dispatch(ctx context.Context, p *lp.Process, until time.Time) (cluster.Peer, error) {
	component := p.ActiveEntry().Target
	holders := d.dir.Holders(component)
	if size := p.WireSize(); size > d.cfg.MaxBytes && len(holders) > 0 {
		return cluster.Peer{}, fmt.Errorf("%w: %d bytes, over the limit of %d", ErrTooLarge, size, d.cfg.MaxBytes)
	}
	if len(holders) == 0 {
		var err error
		if holders, err = d.awaitFresh(ctx, component, until); err != nil {
			return cluster.Peer{}, err
		}
	}
	var failed Failed
	for len(holders) > 0 && (d.cfg.Attempts == 0 || len(failed.Tries) < d.cfg.Attempts) {
		i := d.cfg.Policy.Pick(d.Candidates(holders))
		if i < 0 || i >= len(holders) {
			break
		}
		h := holders[i]
		sctx, cancel := ctx, context.CancelFunc(func() {})
		if !until.IsZero() {
			sctx, cancel = context.WithDeadline(ctx, until)
		}
		err := d.SendTo(sctx, h, p)
		cancel()
		if err == nil {
			return h, nil
		}
		d.log.Debug("send refused or failed; re-picking", "lp", p.ID, "attempt", p.Attempt, "to", h.Name, "component", component, "err", err)
		failed.Tries = append(failed.Tries, Try{h.Name, err})
		if TooLarge(err) || ctx.Err() != nil || !until.IsZero() && !time.Now().Before(until) {
			break
		}
		holders = append(holders[:i:i], holders[i+1:]...)
	}
	if len(failed.Tries) == 0 {
		return cluster.Peer{}, ErrNoPick
	}
	return cluster.Peer{}, &failed
}

// awaitFresh answers a component with no fresh holder. If live nodes hold it
// (their reports are only stale) it polls for a fresh holder for up to
// WaitFresh, within until and ctx; if none does, nobody is coming and it
// returns ErrNoHolder at once.
func (d *Dispatcher) awaitFresh(ctx context.Context, component string, until time.Time) ([]cluster.Peer, error) {
	if !HeldByLive(d.dir, component) {
		return nil, ErrNoHolder
	}
	end := time.Now().Add(d.cfg.WaitFresh)
	if !until.IsZero() && until.Before(end) {
		end = until
	}
	if d.cfg.WaitFresh > 0 {
		d.log.Debug("holders of the component are stale; waiting for a fresh report", "component", component)
	}
	tick := time.NewTicker(freshPoll)
	defer tick.Stop()
	for time.Now().Before(end) {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
		if hs := d.dir.Holders(component); len(hs) > 0 {
			return hs, nil
		}
		if !HeldByLive(d.dir, component) {
			return nil, ErrNoHolder // its holders left
		}
	}
	return nil, ErrNoFresh
}
