package install

import (
	"context"
	"encoding/json"
	"sort"
	"sync"
	"time"

	"github.com/tsubame-rt/tsubame/internal/adminapi"
	"github.com/tsubame-rt/tsubame/internal/mesh/transport"
)

// PeerComponents asks every live node for its components, in parallel.
func (h *Manager) PeerComponents(ctx context.Context, timeout time.Duration) ([]adminapi.ComponentsReport, map[string]string) {
	var (
		mu   sync.Mutex
		reps []adminapi.ComponentsReport
		errs = map[string]string{}
		wg   sync.WaitGroup
	)
	for _, m := range h.cl.Members() {
		if m.Meta.Gateway {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			b, err := h.net.Request(ctx, m.Meta.QUIC, transport.RequestComponents, nil, 4<<20)
			var rep adminapi.ComponentsReport
			if err == nil {
				err = json.Unmarshal(b, &rep)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs[m.Name] = err.Error()
				return
			}
			reps = append(reps, rep)
		}()
	}
	wg.Wait()
	sort.Slice(reps, func(i, j int) bool { return reps[i].Node < reps[j].Node })
	return reps, errs
}

// Components reports what this node holds and the versions it retains.
func (h *Manager) Components() adminapi.ComponentsReport {
	byTarget, refs := h.queued()
	h.mu.Lock()
	pin := h.pinned()
	manifest := make(map[string]componentOrigin, len(h.manifest))
	for name, e := range h.manifest {
		if !e.Removed {
			manifest[name] = componentOrigin{e.Source, e.Auto, e.By, e.InstalledAt}
		}
	}
	h.mu.Unlock()
	rep := adminapi.ComponentsReport{Node: h.name, Components: []adminapi.ComponentInfo{}}
	for _, c := range h.eng.Components() {
		info := adminapi.ComponentInfo{Name: c.Name, Hash: c.Hash.String(), Version: c.Hash.Short(), Size: c.Size,
			Source: sourceConfig, Kinds: map[string]uint64{}, Queued: byTarget[c.Name]}
		if o, ok := manifest[c.Name]; ok {
			at := o.at
			info.Source, info.Auto, info.By, info.InstalledAt = o.source, o.auto, o.by, &at
		}
		if x, ok := h.stats.Load(c.Name); ok {
			s := x.(*compStats)
			info.Steps = s.steps.Load()
			if t := s.last.Load(); t != 0 {
				last := time.Unix(0, t).UTC()
				info.LastStep = &last
			}
			info.Kinds = s.kindCounts()
			s.mu.Lock()
			info.StepsPerSec, info.Load = s.rate, s.load
			s.mu.Unlock()
		}
		rep.Components = append(rep.Components, info)
	}
	for _, hash := range h.vers.Loaded() {
		if pin[hash] {
			continue
		}
		rep.Retained = append(rep.Retained, adminapi.RetainedVersion{Hash: hash.String(),
			KeepUntil: time.Unix(0, h.vers.Until(hash)).UTC(), Queued: refs[hash]})
	}
	sort.Slice(rep.Retained, func(i, j int) bool { return rep.Retained[i].Hash < rep.Retained[j].Hash })
	return rep
}

// componentOrigin is the manifest's word on how a component got here.
type componentOrigin struct {
	source string
	auto   bool
	by     string
	at     time.Time
}

// statusBudget bounds how long /v1/status waits for peers to say how they
// got their components.
const statusBudget = 300 * time.Millisecond

// statusCacheFor bounds how often status asks peers: a dashboard polling
// status many times a second costs the peers one request per this period.
const statusCacheFor = 500 * time.Millisecond

// PeerReports returns the peers' component reports for the node's status,
// asking them at most once per statusCacheFor.
func (h *Manager) PeerReports() []adminapi.ComponentsReport {
	h.statusMu.Lock()
	defer h.statusMu.Unlock()
	if time.Since(h.statusAt) < statusCacheFor {
		return h.statusReps
	}
	ctx, cancel := context.WithTimeout(context.Background(), statusBudget)
	defer cancel()
	h.statusReps, _ = h.PeerComponents(ctx, statusBudget)
	h.statusAt = time.Now()
	return h.statusReps
}
