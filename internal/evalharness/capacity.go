package evalharness

import (
	"sync/atomic"
	"time"
)

// Model is the modelled capacity: every formula-logic step holds its worker
// at least Hold, without using a core while it waits (node.Options.Hold),
// so a node's capacity is workers / Hold however many nodes share the
// machine's cores. It counts the renders it saw and what they took.
type Model struct {
	hold    time.Duration
	short   atomic.Int64 // renders that took hold or longer by themselves
	renders atomic.Int64 // every render seen ...
	took    atomic.Int64 // ... and the nanoseconds they took
}

// NewModel returns the model of a render holding its worker hold.
func NewModel(hold time.Duration) *Model { return &Model{hold: hold} }

// Hold is the node.Options.Hold of the model.
func (m *Model) Hold(component string, took time.Duration) time.Duration {
	if component != "formula-logic" {
		return 0
	}
	m.renders.Add(1)
	m.took.Add(int64(took))
	if took >= m.hold {
		m.short.Add(1)
		return 0
	}
	return m.hold - took
}

// Renders is how many renders the model saw.
func (m *Model) Renders() int64 { return m.renders.Load() }

// Short is how many renders took the hold or longer by themselves: the
// CPU, not the model, bounded them.
func (m *Model) Short() int64 { return m.short.Load() }

// MeanRender is the mean time a render took before the hold padded it.
func (m *Model) MeanRender() time.Duration {
	if n := m.renders.Load(); n > 0 {
		return time.Duration(m.took.Load() / n)
	}
	return 0
}
