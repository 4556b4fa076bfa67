package kv_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tsubame-rt/tsubame/internal/cputime"
	"github.com/tsubame-rt/tsubame/internal/testutil"
	"github.com/tsubame-rt/tsubame/lp"
	"github.com/tsubame-rt/tsubame/node/kv"
)

// benchStep runs one kvprobe step doing ops, b.N times, each as a new LP
// (so a journaled bucket records every step, as in production).
func benchStep(b *testing.B, e *env, comp string, ops []op) {
	in := encode(ops)
	ctx := context.Background()
	p := lp.New("bench", comp, "probe", in)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		p.ID = lp.NewID()
		res, err := e.mod.Step(ctx, comp, p)
		if err != nil || res.Outcome != lp.OutcomeReply {
			b.Fatalf("step: %v %v", res, err)
		}
	}
}

func journalOff(c kv.Config, bucket string) kv.Config {
	off := false
	c.Buckets = map[string]kv.BucketConfig{bucket: {Grant: []string{bucket}, Journal: &off}}
	return c
}

// BenchmarkMemoryStep: a step doing one get and one set on the memory
// backend, with and without the journal, against the same step doing none
// (BENCHMARKS.md: the per-step overhead of KV).
func BenchmarkMemoryStep(b *testing.B) {
	getSet := []op{get("", "k"), set("", "k", "a value of some thirty bytes..")}
	b.Run("none", func(b *testing.B) { benchStep(b, newEnv(b, kv.Config{}), "c", nil) })
	b.Run("get+set/journal", func(b *testing.B) { benchStep(b, newEnv(b, kv.Config{}), "c", getSet) })
	b.Run("get+set/nojournal", func(b *testing.B) { benchStep(b, newEnv(b, journalOff(kv.Config{}, "c")), "c", getSet) })
}

// BenchmarkRedisStep: a step doing one get on a real Redis, with and
// without the journal, a step doing none, and a bare go-redis GET of the
// same key (BENCHMARKS.md: a step's KV operation against a bare client
// round trip).
func BenchmarkRedisStep(b *testing.B) {
	r := testutil.StartRedis(b)
	c := redisConfig(r.URL())
	b.Run("none", func(b *testing.B) { benchStep(b, newEnv(b, c), "c", nil) })
	b.Run("get/journal", func(b *testing.B) { benchStep(b, newEnv(b, c), "c", []op{get("", "k")}) })
	b.Run("get/nojournal", func(b *testing.B) { benchStep(b, newEnv(b, journalOff(c, "c")), "c", []op{get("", "k")}) })
	b.Run("get+set/journal", func(b *testing.B) {
		benchStep(b, newEnv(b, c), "c", []op{get("", "k"), set("", "k", "v")})
	})
	b.Run("get+set/nojournal", func(b *testing.B) {
		benchStep(b, newEnv(b, journalOff(c, "c")), "c", []op{get("", "k"), set("", "k", "v")})
	})
	b.Run("bare-client-get", func(b *testing.B) {
		o, _ := redis.ParseURL(r.URL())
		cl := redis.NewClient(o)
		defer cl.Close()
		ctx := context.Background()
		cl.Set(ctx, "k", "v", 0)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if err := cl.Get(ctx, "k").Err(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// interleave runs the variants in turns of 64 iterations until each has run
// b.N times and returns each one's mean time per iteration: on a shared
// machine, load that comes and goes then weighs on every variant alike,
// so their ratio holds where separate runs would not.
//
// cpu is each one's CPU time per iteration (this process's, GC included),
// which other engineers' load on the machine disturbs much less than wall
// time.
func interleave(b *testing.B, variants ...func()) (wall, cpu []float64) {
	total := make([]time.Duration, len(variants))
	cpus := make([]time.Duration, len(variants))
	b.ResetTimer()
	for done := 0; done < b.N; done += 64 {
		n := min(64, b.N-done)
		for i, v := range variants {
			c0, _ := cputime.Self()
			start := time.Now()
			for range n {
				v()
			}
			total[i] += time.Since(start)
			c1, _ := cputime.Self()
			cpus[i] += c1 - c0
		}
	}
	wall, cpu = make([]float64, len(total)), make([]float64, len(total))
	for i := range total {
		wall[i] = float64(total[i].Nanoseconds()) / float64(b.N)
		cpu[i] = float64(cpus[i].Nanoseconds()) / float64(b.N)
	}
	return wall, cpu
}

// stepper returns a function running one kvprobe step of ops as a new LP.
func stepper(b *testing.B, e *env, comp string, ops []op) func() {
	p := lp.New("bench", comp, "probe", encode(ops))
	ctx := context.Background()
	return func() {
		p.ID = lp.NewID()
		res, err := e.mod.Step(ctx, comp, p)
		if err != nil || res.Outcome != lp.OutcomeReply {
			b.Fatalf("step: %v %v", res, err)
		}
	}
}

// BenchmarkRatios measures, interleaved in one run, what BENCHMARKS.md
// quotes as ratios: the memory backend's get+set per step, a Redis get
// against a bare client round trip, and the journal against none.
func BenchmarkRatios(b *testing.B) {
	getSet := []op{get("", "k"), set("", "k", "a value of some thirty bytes..")}
	b.Run("memory", func(b *testing.B) {
		on, off := newEnv(b, kv.Config{}), newEnv(b, journalOff(kv.Config{}, "c"))
		t, c := interleave(b, stepper(b, on, "c", nil), stepper(b, on, "c", getSet), stepper(b, off, "c", getSet))
		b.ReportMetric(t[0], "ns-step-none")
		b.ReportMetric(t[1]-t[0], "ns-get+set-journal")
		b.ReportMetric(t[2]-t[0], "ns-get+set-nojournal")
		b.ReportMetric(t[1]/t[2], "x-journal")
		b.ReportMetric(c[0], "cpu-ns-step-none")
		b.ReportMetric(c[1]-c[0], "cpu-ns-get+set-journal")
		b.ReportMetric(c[2]-c[0], "cpu-ns-get+set-nojournal")
		b.ReportMetric(c[1]/c[2], "cpu-x-journal")
	})
	b.Run("redis", func(b *testing.B) {
		r := testutil.StartRedis(b)
		c := redisConfig(r.URL())
		on, off := newEnv(b, c), newEnv(b, journalOff(c, "c"))
		o, _ := redis.ParseURL(r.URL())
		cl := redis.NewClient(o)
		defer cl.Close()
		ctx := context.Background()
		cl.Set(ctx, "k", "v", 0)
		bare := func() {
			if err := cl.Get(ctx, "k").Err(); err != nil {
				b.Fatal(err)
			}
		}
		t, _ := interleave(b, stepper(b, on, "c", nil), bare,
			stepper(b, off, "c", []op{get("", "k")}), stepper(b, on, "c", []op{get("", "k")}),
			stepper(b, off, "c", getSet), stepper(b, on, "c", getSet))
		b.ReportMetric(t[1], "ns-bare-get")
		b.ReportMetric((t[2]-t[0])/t[1], "x-get-nojournal/bare")
		b.ReportMetric((t[3]-t[0])/t[1], "x-get-journal/bare")
		b.ReportMetric(t[5]/t[4], "x-journal-get+set")
	})
}
