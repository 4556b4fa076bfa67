package loadgen

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"
)

// Series is a run's results in fixed intervals, with the events the caller
// marked. Its methods are safe for concurrent use.
type Series struct {
	interval time.Duration
	start    time.Time
	mu       sync.Mutex
	buckets  []bucket
	events   []Event
	firstErr string
	lastTag  map[string]time.Duration
	end      time.Duration
	ended    bool
	loaded   []Sample // a series read back from JSON has samples only
}

type bucket struct {
	ok, failed, resent int
	lat                []time.Duration // of the correct answers
	tags               map[string]int
	lag                time.Duration
}

// Event is something that happened during a run, at a time on the run's
// clock.
type Event struct {
	At   time.Duration `json:"at_ns"`
	What string        `json:"what"`
}

// Sample is one interval's figures.
type Sample struct {
	// End is when the interval ended, on the run's clock.
	End time.Duration `json:"end_ns"`
	// OK and Errors count the answers that arrived in the interval.
	OK     int `json:"ok"`
	Errors int `json:"errors"`
	Resent int `json:"resent"`
	// PerSecond is OK per second.
	PerSecond float64 `json:"per_second"`
	// P50 and P99 are of the correct answers' latencies (0 when none).
	P50 time.Duration `json:"p50_ns"`
	P99 time.Duration `json:"p99_ns"`
	// Tags counts the correct answers by Result.Tag.
	Tags map[string]int `json:"tags,omitempty"`
	// Lag is how late the generator's own 5 ms ticker fired at worst: a
	// stall of the load generator's process (or the machine) shows here.
	Lag time.Duration `json:"lag_ns"`
}

// NewSeries returns an empty series sampled every interval, starting now:
// for callers that count results of their own.
func NewSeries(interval time.Duration) *Series { return newSeries(interval) }

func newSeries(interval time.Duration) *Series {
	return &Series{interval: interval, start: time.Now(), lastTag: map[string]time.Duration{}}
}

// Interval is the sample length.
func (s *Series) Interval() time.Duration { return s.interval }

// Since is the time on the series' clock.
func (s *Series) Since() time.Duration { return time.Since(s.start) }

// bucket returns the bucket of the interval at falls in; s.mu is held.
func (s *Series) bucket(at time.Duration) *bucket {
	i := int(at / s.interval)
	for len(s.buckets) <= i {
		s.buckets = append(s.buckets, bucket{})
	}
	return &s.buckets[i]
}

// Add counts one result, now.
func (s *Series) Add(r Result) { s.add(r) }

func (s *Series) add(r Result) {
	at := time.Since(s.start)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	b := s.bucket(at)
	if r.Err != "" {
		b.failed++
		if s.firstErr == "" {
			s.firstErr = r.Err
		}
		return
	}
	b.ok++
	b.lat = append(b.lat, r.Latency)
	if r.Resent {
		b.resent++
	}
	if r.Tag != "" {
		if b.tags == nil {
			b.tags = map[string]int{}
		}
		b.tags[r.Tag]++
		s.lastTag[r.Tag] = at
	}
}

// Mark records an event now and returns when it happened.
func (s *Series) Mark(what string) time.Duration {
	at := time.Since(s.start)
	s.mu.Lock()
	s.events = append(s.events, Event{at, what})
	s.mu.Unlock()
	return at
}

// watchLag records timer lateness until done closes.
func (s *Series) watchLag(done <-chan struct{}) {
	const tick = 5 * time.Millisecond
	t := time.NewTicker(tick)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-done:
			return
		case now := <-t.C:
			lag := now.Sub(last) - tick
			last = now
			s.mu.Lock()
			if !s.ended {
				if b := s.bucket(now.Sub(s.start)); lag > b.lag {
					b.lag = lag
				}
			}
			s.mu.Unlock()
		}
	}
}

// finish ends the series at end. Results after it are dropped. With whole
// set it is cut to the whole intervals before end (the interval the end
// cut short goes; trailing ones nothing finished in stay, at zero);
// otherwise the last interval is kept, short.
func (s *Series) finish(end time.Duration, whole bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := int(end / s.interval)
	if whole {
		end = time.Duration(n) * s.interval
	} else if end%s.interval != 0 {
		n++
	}
	s.end = end
	for len(s.buckets) < n {
		s.buckets = append(s.buckets, bucket{})
	}
	s.buckets = s.buckets[:n]
	s.ended = true
}

// End is when the series ended (0 until the run stopped): the end of its
// last whole interval, or when a bounded run's last request was answered.
func (s *Series) End() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.end
}

// Events returns the marked events in order.
func (s *Series) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.events)
}

// FirstErr is the first failed result's error ("" if none failed).
func (s *Series) FirstErr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.firstErr
}

// LastTag is when the last correct answer tagged tag arrived.
func (s *Series) LastTag(tag string) (time.Duration, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.lastTag[tag]
	return at, ok
}

// Samples returns every interval's figures.
func (s *Series) Samples() []Sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loaded != nil {
		return slices.Clone(s.loaded)
	}
	out := make([]Sample, len(s.buckets))
	for i, b := range s.buckets {
		lat := slices.Clone(b.lat)
		end := min(time.Duration(i+1)*s.interval, s.end)
		out[i] = Sample{
			End: end, OK: b.ok, Errors: b.failed, Resent: b.resent,
			PerSecond: float64(b.ok) / (end - time.Duration(i)*s.interval).Seconds(),
			P50:       Percentile(lat, 50), P99: Percentile(lat, 99),
			Tags: cloneMap(b.tags), Lag: b.lag,
		}
	}
	return out
}

func cloneMap(m map[string]int) map[string]int {
	if m == nil {
		return nil
	}
	c := make(map[string]int, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// Totals counts every interval's results.
func (s *Series) Totals() (ok, failed, resent int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.buckets {
		ok, failed, resent = ok+b.ok, failed+b.failed, resent+b.resent
	}
	return
}

// Latencies returns the correct answers' latencies of the whole run.
func (s *Series) Latencies() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var all []time.Duration
	for _, b := range s.buckets {
		all = append(all, b.lat...)
	}
	return all
}

// Tags counts the correct answers of the whole run by tag.
func (s *Series) Tags() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	all := map[string]int{}
	for _, b := range s.buckets {
		for k, v := range b.tags {
			all[k] += v
		}
	}
	return all
}

// window returns the indexes of the whole intervals inside [from, to).
func (s *Series) window(from, to time.Duration) (first, last int) {
	first = max(int((from+s.interval-1)/s.interval), 0)
	last = min(int(to/s.interval), int(s.end/s.interval)) - 1
	return first, last
}

// Rate returns the mean and the lowest requests/s of the whole intervals
// inside [from, to) (0, 0 when there are none).
func (s *Series) Rate(from, to time.Duration) (mean, low float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	first, last := s.window(from, to)
	if first > last {
		return 0, 0
	}
	sum := 0
	low = -1
	for i := first; i <= last; i++ {
		r := float64(s.buckets[i].ok) / s.interval.Seconds()
		if low < 0 || r < low {
			low = r
		}
		sum += s.buckets[i].ok
	}
	return float64(sum) / (float64(last-first+1) * s.interval.Seconds()), low
}

// Failed counts the failed results of the whole intervals inside [from, to).
func (s *Series) Failed(from, to time.Duration) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	first, last := s.window(from, to)
	n := 0
	for i := first; i <= last; i++ {
		n += s.buckets[i].failed
	}
	return n
}

// MaxLag is the worst timer lag in the whole intervals inside [from, to).
func (s *Series) MaxLag(from, to time.Duration) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	first, last := s.window(from, to)
	var lag time.Duration
	for i := first; i <= last; i++ {
		lag = max(lag, s.buckets[i].lag)
	}
	return lag
}

// TagsAfter counts the correct answers tagged tag in the intervals that
// begin at or after from.
func (s *Series) TagsAfter(tag string, from time.Duration) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for i := max(int((from+s.interval-1)/s.interval), 0); i < len(s.buckets); i++ {
		n += s.buckets[i].tags[tag]
	}
	return n
}

// FirstTag is the start of the first interval with an answer tagged tag
// (-1 when none).
func (s *Series) FirstTag(tag string) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, b := range s.buckets {
		if b.tags[tag] > 0 {
			return time.Duration(i) * s.interval
		}
	}
	return -1
}

// TagNames returns every tag seen, sorted.
func (s *Series) TagNames() []string {
	names := []string{}
	for k := range s.Tags() {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool { return naturalLess(names[i], names[j]) })
	return names
}

// naturalLess orders "node-2" before "node-10".
func naturalLess(a, b string) bool {
	ta, na := splitNumber(a)
	tb, nb := splitNumber(b)
	if ta != tb {
		return ta < tb
	}
	return na < nb
}

func splitNumber(s string) (string, int) {
	i := len(s)
	for i > 0 && s[i-1] >= '0' && s[i-1] <= '9' {
		i--
	}
	n, _ := strconv.Atoi(s[i:])
	return s[:i], n
}

// WriteCSV writes one row per sample: end_s, ok, errors, resent,
// per_second, p50_ms, p99_ms, lag_ms, then one column per tag.
func (s *Series) WriteCSV(w io.Writer) error {
	tags := s.TagNames()
	cw := csv.NewWriter(w)
	head := append([]string{"end_s", "ok", "errors", "resent", "per_second", "p50_ms", "p99_ms", "lag_ms"}, tags...)
	if err := cw.Write(head); err != nil {
		return err
	}
	ms := func(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 3, 64) }
	for _, x := range s.Samples() {
		row := []string{strconv.FormatFloat(x.End.Seconds(), 'f', 3, 64), strconv.Itoa(x.OK), strconv.Itoa(x.Errors),
			strconv.Itoa(x.Resent), strconv.FormatFloat(x.PerSecond, 'f', 1, 64), ms(x.P50), ms(x.P99), ms(x.Lag)}
		for _, t := range tags {
			row = append(row, strconv.Itoa(x.Tags[t]))
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// MarshalJSON writes the samples and events.
func (s *Series) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		IntervalNS time.Duration `json:"interval_ns"`
		Samples    []Sample      `json:"samples"`
		Events     []Event       `json:"events"`
	}{s.interval, s.Samples(), s.Events()})
}

// UnmarshalJSON reads back what MarshalJSON wrote: the samples and events.
// A series read back has per-sample percentiles but no latencies
// (Latencies is empty), and takes no results.
func (s *Series) UnmarshalJSON(b []byte) error {
	var v struct {
		IntervalNS time.Duration `json:"interval_ns"`
		Samples    []Sample      `json:"samples"`
		Events     []Event       `json:"events"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	if v.IntervalNS <= 0 {
		return fmt.Errorf("loadgen: series with interval %d", v.IntervalNS)
	}
	*s = Series{interval: v.IntervalNS, events: v.Events, loaded: v.Samples, ended: true, lastTag: map[string]time.Duration{}}
	if v.Samples == nil {
		s.loaded = []Sample{}
	}
	for _, x := range v.Samples { // the counts, for Rate, Totals and the like
		s.buckets = append(s.buckets, bucket{ok: x.OK, failed: x.Errors, resent: x.Resent, tags: x.Tags, lag: x.Lag})
	}
	if n := len(v.Samples); n > 0 {
		s.end = v.Samples[n-1].End
	}
	return nil
}

// String is a one-line summary.
func (s *Series) String() string {
	ok, failed, resent := s.Totals()
	return fmt.Sprintf("%d ok, %d failed, %d resent in %s", ok, failed, resent, s.End())
}

// Percentile returns the p-th percentile (nearest rank) of ds; it sorts ds.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := int(float64(len(ds))*p/100+0.5) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}
