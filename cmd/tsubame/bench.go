package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"sort"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/tsubame-rt/tsubame/internal/democluster"
	"github.com/tsubame-rt/tsubame/internal/loadgen"
)

func init() {
	register(command{"bench", "run a benchmark scenario on loopback (tsubame bench -h lists them)", runBench})
	registerBench(benchScenario{"gateway", "gateway throughput for /hello vs a plain net/http handler", benchGateway})
}

// benchScenario is one `tsubame bench NAME` scenario; other files add theirs
// with registerBench.
type benchScenario struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

var benchScenarios = map[string]benchScenario{}

func registerBench(s benchScenario) { benchScenarios[s.name] = s }

func runBench(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(stderr, "usage: tsubame bench SCENARIO [flags]\n\nscenarios:")
		names := make([]string, 0, len(benchScenarios))
		width := 0
		for n := range benchScenarios {
			names = append(names, n)
			width = max(width, len(n))
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprintf(stderr, "  %-*s  %s\n", width, n, benchScenarios[n].summary)
		}
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	s, ok := benchScenarios[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "tsubame bench: unknown scenario %q (tsubame bench -h lists them)\n", args[0])
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return s.run(ctx, args[1:], stdout, stderr)
}

// benchGateway measures closed-loop /hello throughput and latency through a
// demo cluster of each size, and through a plain net/http handler doing the
// same string work, in the same run on the same machine.
func benchGateway(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tsubame bench gateway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	nodesFlag := fs.String("nodes", "1,3", "comma-separated cluster `sizes` to measure")
	duration := fs.Duration("duration", 5*time.Second, "measuring time per configuration (at most 60s)")
	warmup := fs.Duration("warmup", time.Second, "unmeasured load before each measurement")
	concurrency := fs.Int("concurrency", 32, "concurrent clients (1 to 1024)")
	workers := fs.Int("workers", 0, "workers per node (0: GOMAXPROCS)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	sizes, err := parseSizes(*nodesFlag)
	if err != nil {
		fmt.Fprintf(stderr, "tsubame bench gateway: --nodes %q: want sizes from 1 to 16\n", *nodesFlag)
		return 2
	}
	if fs.NArg() > 0 || *duration <= 0 || *duration > time.Minute || *warmup < 0 || *warmup > time.Minute ||
		*concurrency < 1 || *concurrency > 1024 {
		fs.Usage()
		return 2
	}
	const want = "Hello, bench!"
	measure := func(label, base string) (*loadgen.Series, bool) {
		client := loadgen.NewClient(*concurrency)
		defer client.CloseIdleConnections()
		do := loadgen.Get(client, base+"/hello?name=bench", want)
		lc := loadgen.Config{Concurrency: *concurrency, Interval: time.Minute}
		if *warmup > 0 {
			_, _ = loadgen.Run(ctx, lc, *warmup, do)
		}
		lc.Interval = loadgen.DefaultInterval
		s, err := loadgen.Run(ctx, lc, *duration, do)
		if err != nil {
			return s, false
		}
		if _, failed, _ := s.Totals(); failed > 0 {
			fmt.Fprintf(stderr, "%s: %d errors (first: %s)\n", label, failed, s.FirstErr())
		}
		return s, true
	}

	type row struct {
		label string
		s     *loadgen.Series
	}
	var rows []row
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(stderr, "tsubame bench gateway:", err)
		return 1
	}
	plain := &http.Server{Handler: http.HandlerFunc(democluster.PlainHello)}
	go plain.Serve(ln)
	s, ok := measure("plain net/http", "http://"+ln.Addr().String())
	plain.Close()
	if !ok {
		return 1
	}
	rows = append(rows, row{"plain net/http", s})
	for _, n := range sizes {
		fmt.Fprintf(stderr, "starting %d node(s)...\n", n)
		d, err := democluster.Start(ctx, democluster.Config{Nodes: n, HTTP: "127.0.0.1:0", Workers: *workers})
		if err != nil {
			fmt.Fprintln(stderr, "tsubame bench gateway:", err)
			return 1
		}
		label := fmt.Sprintf("gateway, %d node(s)", n)
		s, ok := measure(label, d.URL())
		sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		_ = d.Shutdown(sctx)
		cancel()
		if !ok {
			return 1
		}
		rows = append(rows, row{label, s})
	}

	fmt.Fprintf(stdout, "GET /hello, %d concurrent clients, %s each (after %s warm-up), GOMAXPROCS %d\n",
		*concurrency, *duration, *warmup, runtime.GOMAXPROCS(0))
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\trequests/s\tp50\tp99\terrors\tthroughput vs plain\tp99 vs plain\t")
	var baseRate float64
	var baseP99 time.Duration
	for i, x := range rows {
		ok, failed, _ := x.s.Totals()
		rate := float64(ok) / x.s.End().Seconds()
		lat := x.s.Latencies()
		p50, p99 := loadgen.Percentile(lat, 50), loadgen.Percentile(lat, 99)
		if i == 0 {
			baseRate, baseP99 = rate, p99
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%d\t%.3f\t%.1fx\t\n", x.label, rate,
			p50.Round(time.Microsecond), p99.Round(time.Microsecond), failed,
			rate/baseRate, float64(p99)/float64(baseP99))
	}
	tw.Flush()
	return 0
}
