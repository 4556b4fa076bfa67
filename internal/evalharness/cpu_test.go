package evalharness

import (
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tsubame-rt/tsubame/internal/cpulimit"
	"github.com/tsubame-rt/tsubame/internal/loadgen"
	"github.com/tsubame-rt/tsubame/internal/testutil"
)

func TestNginxConf(t *testing.T) {
	c := nginxConf("/d", "127.0.0.1:9", "least_conn", []string{"127.0.0.1:1", "127.0.0.1:2"})
	for _, want := range []string{"worker_processes 1;", "least_conn;", "server 127.0.0.1:1 ", "server 127.0.0.1:2 ",
		"keepalive 64;", "listen 127.0.0.1:9;", "proxy_http_version 1.1;", "pid /d/nginx.pid;", "access_log off;"} {
		if !strings.Contains(c, want) {
			t.Errorf("config lacks %q:\n%s", want, c)
		}
	}
	if strings.Contains(nginxConf("/d", "a", "round-robin", nil), "least_conn") {
		t.Error("round-robin config says least_conn")
	}
}

func TestMeanStd(t *testing.T) {
	m, s := meanStd([]float64{2, 4, 6})
	if m != 4 || s != 2 {
		t.Fatalf("mean %v sd %v, want 4 and 2", m, s)
	}
	if m, s := meanStd([]float64{5}); m != 5 || s != 0 {
		t.Fatalf("one run: %v %v", m, s)
	}
}

// series builds a finished series of per-interval counts.
func series(t *testing.T, iv time.Duration, counts ...int) *loadgen.Series {
	t.Helper()
	var b strings.Builder
	b.WriteString(`{"interval_ns":` + itoa(int(iv)) + `,"samples":[`)
	for i, n := range counts {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"end_ns":` + itoa(int(iv)*(i+1)) + `,"ok":` + itoa(n) + `,"per_second":` + itoa(int(float64(n)/iv.Seconds())) + `}`)
	}
	b.WriteString(`]}`)
	var s loadgen.Series
	if err := s.UnmarshalJSON([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	return &s
}

// TestSummarizeAndGoals: a kill that halves a two-node rate for one
// interval and recovers at once meets the share and the 3 s goals; a join
// that never reaches its plateau misses.
func TestSummarizeAndGoals(t *testing.T) {
	iv := time.Second
	kill := series(t, iv, 100, 100, 100, 50, 50, 50, 50, 50, 50)
	c := summarize(kill, 3*iv, 3*iv, 2*iv)
	if c.MeanBefore != 100 || c.MeanAfter != 50 || c.Low != 50 || c.Back != iv {
		t.Fatalf("kill summary %+v", c)
	}
	join := series(t, iv, 100, 100, 100, 80, 100, 100, 100, 150, 150, 150)
	j := summarize(join, 3*iv, 3*iv, 2*iv)
	r := &Report{
		Scale: []ScalePoint{{System: "tsubame p2c", Nodes: 1, Rates: []float64{100}}, {System: "tsubame p2c", Nodes: 4, Rates: []float64{390}},
			{System: "nginx round-robin", Nodes: 1, Rates: []float64{110}}},
		Hetero: []ScalePoint{{System: "tsubame p2c", Nodes: 3, Rates: []float64{215}}, {System: "nginx round-robin", Nodes: 3, Rates: []float64{150}}},
		Join:   []TimelineRun{{System: "tsubame p2c", Nodes: 2, Summary: j}},
		Kill:   []TimelineRun{{System: "tsubame p2c", Nodes: 2, Summary: c}, {System: "nginx round-robin", Nodes: 2, Failed: 7}},
	}
	met := map[string]bool{}
	for _, g := range goals(r, CPUConfig{}) {
		met[g.Name] = g.Met
	}
	want := map[string]bool{
		"scale-out, 4 nodes vs 1 (all distinct)":                true, // 3.9x
		"one node vs the plain server under the same limit":     true, // 0.91x
		"heterogeneous: vs the sum of capacities (tsubame p2c)": true, // 215 of 225
		"heterogeneous: vs nginx round-robin":                   true, // 1.43x
		"join: new plateau within 2 s":                          false,
		"join: no interval below 0.9x the plateau before":       false, // 80 of 100
		"kill: zero failed requests":                            true,
		"kill: drop no deeper than the node's share":            true,
		"kill: back within 3 s":                                 true,
		"kill: nginx round-robin (baseline, reported)":          true,
	}
	for name, w := range want {
		if got, ok := met[name]; !ok || got != w {
			t.Errorf("%s: met %v (present %v), want %v", name, got, ok, w)
		}
	}
	if r.WrongReplies() != 0 {
		t.Errorf("nginx's kill failures counted as wrong replies: %d", r.WrongReplies())
	}
	r.Join = append(r.Join, TimelineRun{System: "nginx round-robin", Failed: 2})
	if r.WrongReplies() != 0 {
		t.Errorf("nginx's join failures counted as wrong replies: %d", r.WrongReplies())
	}
	r.Kill[0].Failed, r.Join[0].Failed = 2, 1
	if r.WrongReplies() != 3 {
		t.Errorf("Tsubame's kill and join failures: %d counted, want 3", r.WrongReplies())
	}
}

func TestReportRoundTrip(t *testing.T) {
	dir := t.TempDir()
	r := &Report{Isolation: "x", CPUs: 0.25, Scale: []ScalePoint{{System: "tsubame p2c", Nodes: 1, Rates: []float64{1, 2}}},
		Kill: []TimelineRun{{System: "nginx least_conn", Nodes: 2, Series: series(t, time.Second, 5, 6)}}}
	files, err := r.Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || filepath.Base(files[1]) != "kill-nginx-least_conn.csv" {
		t.Fatalf("files %v", files)
	}
	back, err := ReadReport(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if back.CPUs != 0.25 || math.Abs(back.Scale[0].Mean()-1.5) > 1e-9 || len(back.Kill[0].Series.Samples()) != 2 {
		t.Fatalf("read back %+v", back)
	}
}

// TestCPUSmoke runs the real-CPU path, bounded: one limited node process
// behind the gateway, then two with one killed, every reply checked; and the
// same renderer behind nginx where nginx is installed. It needs CPU
// isolation (root and a cgroup cpu controller) and skips, saying so,
// without it.
func TestCPUSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts node processes")
	}
	iso := cpulimit.Detect("tsubame-eval-test")
	if iso.None() {
		t.Skip("no CPU isolation:", iso.Why)
	}
	t.Cleanup(func() { iso.Close() })
	o := Options{Workers: 2, Concurrency: 4, Seed: 5, Attempt: time.Second, Binary: testutil.Binary(t), Isolation: iso}
	if testing.Verbose() {
		o.Log = os.Stderr
	}
	systems := []System{{"tsubame", "p2c"}}
	if _, err := NginxBinary(); err == nil {
		systems = append(systems, System{"nginx", "least_conn"})
	} else {
		t.Log("no nginx baseline:", err)
	}
	for _, sys := range systems {
		pt, err := throughputCPU(t.Context(), o, sys, Layout{CPUs: []float64{0.5}}, 1, 20)
		if err != nil {
			t.Fatal(err)
		}
		if pt.Failed != 0 || len(pt.Rates) != 1 || pt.Rates[0] <= 0 {
			t.Fatalf("%s: %+v", sys, pt)
		}
		if sys.Kind == "tsubame" && pt.Hops != 0 {
			t.Errorf("one node: %.2f migrations per request, want 0", pt.Hops)
		}
	}
	c := CPUConfig{CPUs: 0.5, KillNodes: 2, Before: SettleAfterStop(o), After: SettleAfterStop(o) + time.Second}
	run, err := timelineCPU(t.Context(), o, System{"tsubame", "p2c"}, c, "kill")
	if err != nil {
		t.Fatal(err)
	}
	if run.Failed != 0 || run.Member != "node-2" {
		t.Fatalf("kill: %d failed, killed %q (first: %s)", run.Failed, run.Member, run.Series.FirstErr())
	}
	if ok, _, _ := run.Series.Totals(); ok == 0 {
		t.Fatal("kill: nothing answered")
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
