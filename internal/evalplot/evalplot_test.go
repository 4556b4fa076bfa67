package evalplot

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/tsubame-rt/tsubame/internal/evalharness"
	"github.com/tsubame-rt/tsubame/internal/loadgen"
)

// TestWrite draws every figure of a small report as SVG and PNG, and none
// for what the report lacks.
func TestWrite(t *testing.T) {
	var s loadgen.Series
	if err := s.UnmarshalJSON([]byte(`{"interval_ns":250000000,"samples":[{"end_ns":250000000,"ok":10,"per_second":40},{"end_ns":500000000,"ok":20,"per_second":80}],"events":[]}`)); err != nil {
		t.Fatal(err)
	}
	r := &evalharness.Report{CPUs: 0.25,
		Scale: []evalharness.ScalePoint{{System: "tsubame p2c", Nodes: 1, Rates: []float64{10, 12}}, {System: "tsubame p2c", Nodes: 2, Rates: []float64{20, 22}},
			{System: "nginx round-robin", Nodes: 1, Rates: []float64{11}}},
		Kill: []evalharness.TimelineRun{{System: "tsubame p2c", Nodes: 2, Series: &s, At: 250e6}, {System: "nginx round-robin", Nodes: 2, Series: &s, Failed: 3}},
	}
	dir := t.TempDir()
	files, err := Write(r, dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"fig6-scaleout.svg", "fig6-scaleout.png", "fig8-kill.svg", "fig8-kill.png"}
	if len(files) != len(want) {
		t.Fatalf("wrote %v, want %v", files, want)
	}
	for i, f := range files {
		if filepath.Base(f) != want[i] {
			t.Fatalf("wrote %v, want %v", files, want)
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		magic := []byte("<?xml")
		if filepath.Ext(f) == ".png" {
			magic = []byte("\x89PNG")
		}
		if !bytes.HasPrefix(b, magic) {
			t.Errorf("%s starts %q", f, b[:min(len(b), 8)])
		}
	}
	svg, _ := os.ReadFile(files[2])
	if !bytes.Contains(svg, []byte("3 failed")) {
		t.Error("the kill figure does not say nginx's failures")
	}
}
