package loadgen

import (
	"fmt"
	"io"
	"os"
	"time"
)

// IsTerminal reports whether w is a terminal (a character device), where a
// live progress line helps; elsewhere (a file, a pipe, CI) it is noise.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Progress rewrites one line on w after every interval of g's series —
// label, time, the last interval's requests/s and p99, errors so far —
// until the returned stop is called (which clears the line).
func (g *Gen) Progress(w io.Writer, label string) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(g.Series.Interval())
		defer t.Stop()
		for {
			select {
			case <-done:
				fmt.Fprint(w, "\r\033[K")
				return
			case <-t.C:
				fmt.Fprintf(w, "\r\033[K%s", g.Series.progressLine(label))
			}
		}
	}()
	return func() { close(done); <-finished }
}

// progressLine summarises the series so far.
func (s *Series) progressLine(label string) string {
	now := s.Since()
	s.mu.Lock()
	defer s.mu.Unlock()
	failed := 0
	for _, b := range s.buckets {
		failed += b.failed
	}
	last := int(now/s.interval) - 1
	rate, p99 := 0.0, time.Duration(0)
	if last >= 0 && last < len(s.buckets) {
		b := s.buckets[last]
		rate = float64(b.ok) / s.interval.Seconds()
		lat := append([]time.Duration(nil), b.lat...)
		p99 = Percentile(lat, 99)
	}
	return fmt.Sprintf("%s  t=%.1fs  %.0f req/s  p99 %s  errors %d", label, now.Seconds(), rate, p99.Round(time.Millisecond), failed)
}
