package obs

import (
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tsubame-rt/tsubame/lp"
)

// Journey is the path of one LP as one node or gateway saw it: every step the
// LP's trace recorded (where it ran, which component and version, how long it
// waited and ran, why it moved on). An LP carries its own trace, so the
// journey its origin records when it comes back is the whole journey; a node
// it merely passed through records the journey up to its departure.
type Journey struct {
	ID      string `json:"id"`
	TraceID string `json:"trace_id,omitempty"`
	Origin  string `json:"origin"`
	// Route is the gateway route that made the LP, when the origin records it.
	Route     string `json:"route,omitempty"`
	Component string `json:"component"`
	Kind      string `json:"kind"`
	Attempt   uint32 `json:"attempt"`
	// RecordedBy is the node or gateway that kept this record, At when.
	RecordedBy string    `json:"recorded_by"`
	At         time.Time `json:"at"`
	// Finished: the root entry has its result (the journey is complete).
	Finished bool `json:"finished"`
	// Status is "ok", "failed" (Code says why) or "running".
	Status string `json:"status"`
	Code   uint32 `json:"code,omitempty"`
	// ElapsedMS is the request's time at its origin, when known.
	ElapsedMS float64 `json:"elapsed_ms,omitempty"`
	// Dropped counts early steps the LP's bounded trace no longer holds.
	Dropped uint32        `json:"dropped,omitempty"`
	Steps   []JourneyStep `json:"steps"`
}

// JourneyStep is one step of a Journey.
type JourneyStep struct {
	Node      string    `json:"node"`
	Component string    `json:"component"`
	Kind      string    `json:"kind"`
	Version   string    `json:"version,omitempty"` // short module hash
	Outcome   string    `json:"outcome"`
	Start     time.Time `json:"start"`
	StepUS    uint32    `json:"step_us"`
	WaitUS    uint32    `json:"wait_us"`
	// Next says why the LP left the node after this step ("" if it stayed).
	Next string `json:"next,omitempty"`
}

// Ring keeps the most recent journeys in a fixed number of reused slots:
// recording one copies the LP's trace and allocates nothing once the slots
// and the string table are warm.
type Ring struct {
	name string

	mu    sync.Mutex
	slots []slot
	next  uint64
	names map[string]string // interned component, node and route names
}

type slot struct {
	id         lp.ID
	trace      [16]byte
	origin     string
	route      string
	comp, kind string
	attempt    uint32
	at         int64
	finished   bool
	failed     bool
	code       uint32
	elapsed    time.Duration
	dropped    uint32
	steps      []slotStep
}

type slotStep struct {
	node, comp, kind string
	version          lp.Hash
	outcome          lp.Outcome
	next             lp.Move
	start            int64
	micros, wait     uint32
}

// maxInterned bounds the string table: names are bounded by configuration,
// and beyond this many a record copies its names instead.
const maxInterned = 4096

// DefaultRingSize is how many journeys a node or gateway keeps.
const DefaultRingSize = 512

// NewRing returns a ring of size journeys, recorded by name.
func NewRing(name string, size int) *Ring {
	if size <= 0 {
		size = DefaultRingSize
	}
	return &Ring{name: name, slots: make([]slot, size), names: map[string]string{}}
}

// Record keeps p's journey as it is now. route names the gateway route that
// made it, elapsed its time at the origin (0 when unknown). Nothing of p is
// kept: names are copied (interned), so p's buffers may be reused.
func (r *Ring) Record(p *lp.Process, route string, elapsed time.Duration) {
	if r == nil || len(p.Entries) == 0 {
		return
	}
	now := time.Now().UnixNano()
	r.mu.Lock()
	s := &r.slots[r.next%uint64(len(r.slots))]
	r.next++
	root := &p.Entries[0]
	s.id, s.trace = p.ID, p.TraceContext.TraceID
	s.origin, s.route = r.intern(p.Origin), r.intern(route)
	s.comp, s.kind = r.intern(root.Target), r.intern(root.Kind)
	s.attempt, s.at, s.elapsed, s.dropped = p.Attempt, now, elapsed, p.TraceDropped
	s.finished, s.failed, s.code = p.Finished(), root.State == lp.StateFailed, root.ErrCode
	s.steps = s.steps[:0]
	for i := range p.Trace {
		t := &p.Trace[i]
		st := slotStep{node: r.intern(t.Node), outcome: t.Outcome, next: t.Next, start: t.Start, micros: t.Micros, wait: t.WaitMicros}
		if e := int(t.Entry); e >= 0 && e < len(p.Entries) {
			en := &p.Entries[e]
			st.comp, st.kind, st.version = r.intern(en.Target), r.intern(en.Kind), en.Module
		}
		s.steps = append(s.steps, st)
	}
	r.mu.Unlock()
}

// intern returns s from the table, adding a copy if there is room.
// r.mu is held.
func (r *Ring) intern(s string) string {
	if s == "" {
		return ""
	}
	if v, ok := r.names[s]; ok {
		return v
	}
	c := strings.Clone(s)
	if len(r.names) < maxInterned {
		r.names[c] = c
	}
	return c
}

func (s *slot) journey(by string) Journey {
	j := Journey{
		ID: s.id.String(), Origin: s.origin, Route: s.route, Component: s.comp, Kind: s.kind,
		Attempt: s.attempt, RecordedBy: by, At: time.Unix(0, s.at).UTC(), Finished: s.finished,
		Status: "running", Dropped: s.dropped, Steps: make([]JourneyStep, len(s.steps)),
	}
	if s.trace != ([16]byte{}) {
		j.TraceID = hex.EncodeToString(s.trace[:])
	}
	switch {
	case s.finished && s.failed:
		j.Status, j.Code = "failed", s.code
	case s.finished:
		j.Status = "ok"
	}
	if s.elapsed > 0 {
		j.ElapsedMS = float64(s.elapsed.Microseconds()) / 1000
	}
	for i, st := range s.steps {
		js := JourneyStep{Node: st.node, Component: st.comp, Kind: st.kind, Outcome: st.outcome.String(),
			StepUS: st.micros, WaitUS: st.wait}
		if !st.version.IsZero() {
			js.Version = st.version.Short()
		}
		if st.start != 0 {
			js.Start = time.UnixMicro(st.start).UTC()
		}
		if st.next != lp.MoveNone {
			js.Next = st.next.String()
		}
		j.Steps[i] = js
	}
	return j
}

// Recent returns up to n journeys, newest first.
func (r *Ring) Recent(n int) []Journey {
	r.mu.Lock()
	defer r.mu.Unlock()
	total := min(r.next, uint64(len(r.slots)))
	n = min(n, int(total))
	out := make([]Journey, 0, n)
	for i := uint64(1); i <= uint64(n); i++ {
		out = append(out, r.slots[(r.next-i)%uint64(len(r.slots))].journey(r.name))
	}
	return out
}

// Find returns the most complete journey kept for the LP whose ID starts
// with prefix (at least 8 hex digits): a finished one before a partial one,
// then the one with the most steps, then the newest.
func (r *Ring) Find(prefix string) (Journey, bool) {
	prefix = strings.ToLower(prefix)
	if len(prefix) < 8 {
		return Journey{}, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	best := -1
	total := min(r.next, uint64(len(r.slots)))
	for i := uint64(1); i <= total; i++ {
		k := int((r.next - i) % uint64(len(r.slots)))
		s := &r.slots[k]
		if !hasHexPrefix(s.id[:], prefix) {
			continue
		}
		if best < 0 || better(s, &r.slots[best]) {
			best = k
		}
	}
	if best < 0 {
		return Journey{}, false
	}
	return r.slots[best].journey(r.name), true
}

func better(a, b *slot) bool {
	if a.finished != b.finished {
		return a.finished
	}
	return len(a.steps)+int(a.dropped) > len(b.steps)+int(b.dropped)
}

func hasHexPrefix(id []byte, prefix string) bool {
	var buf [32]byte
	hex.Encode(buf[:], id)
	return strings.HasPrefix(string(buf[:]), prefix)
}

// Journeys is the body of GET /v1/journeys.
type Journeys struct {
	RecordedBy string    `json:"recorded_by"`
	Journeys   []Journey `json:"journeys"`
}

// Routes registers the journey API on mux under prefix (e.g. "/v1"):
// GET prefix/journeys?limit=N lists the newest (default 50, at most the
// ring's size); GET prefix/journeys/{id} gives one by ID or an ID prefix of
// at least 8 hex digits, 404 if this ring does not hold it.
func (r *Ring) Routes(mux *http.ServeMux, prefix string) {
	mux.HandleFunc("GET "+prefix+"/journeys", func(w http.ResponseWriter, req *http.Request) {
		n := 50
		if v := req.URL.Query().Get("limit"); v != "" {
			var err error
			if n, err = strconv.Atoi(v); err != nil || n < 0 {
				http.Error(w, "limit: want a non-negative integer", http.StatusBadRequest)
				return
			}
		}
		writeJSON(w, Journeys{RecordedBy: r.name, Journeys: r.Recent(n)})
	})
	mux.HandleFunc("GET "+prefix+"/journeys/{id}", func(w http.ResponseWriter, req *http.Request) {
		id := req.PathValue("id")
		if len(id) < 8 || len(id) > 32 || strings.Trim(strings.ToLower(id), "0123456789abcdef") != "" {
			http.Error(w, "journey ID: want 8 to 32 hex digits of an LP ID", http.StatusBadRequest)
			return
		}
		j, ok := r.Find(id)
		if !ok {
			http.Error(w, "no journey of LP "+id+" is kept here", http.StatusNotFound)
			return
		}
		writeJSON(w, j)
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
