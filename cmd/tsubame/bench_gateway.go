package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"text/tabwriter"
	"time"

	"github.com/tsubame-rt/tsubame/internal/baseline"
	"github.com/tsubame-rt/tsubame/internal/cputime"
	"github.com/tsubame-rt/tsubame/internal/democluster"
	"github.com/tsubame-rt/tsubame/internal/loadgen"
)

// benchGateway loads GET /hello on a Tsubame demo cluster of each size and
// on the baseline of the same size (one plain Go server, or with --vs nginx
// nginx over that many), each a child process, with the same client in the
// same run, and prints one table.
func benchGateway(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tsubame bench gateway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	nodesFlag := fs.String("nodes", "1,3", "comma-separated cluster `sizes` to measure")
	placement := fs.String("placement", "all", "`all`: every node holds every component (as nginx's replicas are); spread: the demo's, every request migrates")
	vs := fs.String("vs", "", "baseline: \"\" one plain Go server; `nginx`: nginx round-robin over as many plain servers as nodes")
	standalone := fs.Bool("standalone-gateway", false, "run Tsubame's gateway as a member of its own instead of inside node-1")
	duration := fs.Duration("duration", 10*time.Second, "measuring time per target (at most 5m)")
	warmup := fs.Duration("warmup", 2*time.Second, "unmeasured load before each measurement")
	concurrency := fs.Int("concurrency", 64, "concurrent clients (1 to 1024)")
	clientFlag := fs.String("client", "go", "load generator: `go` (internal/loadgen in this process, checks every body) or wrk (wrk -t2, lighter; checks statuses only)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	sizes, err := parseSizes(*nodesFlag)
	if err != nil {
		fmt.Fprintf(stderr, "tsubame bench gateway: --nodes %q: want sizes from 1 to 16\n", *nodesFlag)
		return 2
	}
	if _, err := democluster.PlacedApp(*placement); err != nil {
		fmt.Fprintln(stderr, "tsubame bench gateway: --placement:", err)
		return 2
	}
	if *clientFlag != "go" && *clientFlag != "wrk" {
		fmt.Fprintf(stderr, "tsubame bench gateway: --client %q: want go or wrk\n", *clientFlag)
		return 2
	}
	if *vs != "" && *vs != "nginx" {
		fmt.Fprintf(stderr, "tsubame bench gateway: --vs %q: want nginx (or nothing)\n", *vs)
		return 2
	}
	if fs.NArg() > 0 || *duration <= 0 || *duration > 5*time.Minute || *warmup < 0 || *warmup > time.Minute ||
		*concurrency < 1 || *concurrency > 1024 {
		fs.Usage()
		return 2
	}
	bin, err := os.Executable()
	if err != nil {
		fmt.Fprintln(stderr, "tsubame bench gateway:", err)
		return 1
	}
	if *vs == "nginx" {
		if _, err := baseline.NginxPath(); err != nil {
			fmt.Fprintln(stderr, "tsubame bench gateway:", err)
			return 1
		}
	}

	var rows []gatewayRow
	for _, n := range sizes {
		base := "plain net/http"
		start := func() (*baseline.Target, error) { return baseline.Plain(ctx, bin) }
		if *vs == "nginx" {
			base = fmt.Sprintf("nginx -> %d plain", n)
			start = func() (*baseline.Target, error) { return baseline.Nginx(ctx, bin, n) }
		}
		demoArgs := []string{"--nodes", fmt.Sprint(n), "--placement", *placement}
		shape := "embedded"
		if *standalone {
			demoArgs = append(demoArgs, "--standalone-gateway")
			shape = "standalone gw"
		}
		for i, tg := range []struct {
			label string
			start func() (*baseline.Target, error)
		}{
			{base, start},
			{fmt.Sprintf("tsubame %d node(s), %s, %s", n, *placement, shape), func() (*baseline.Target, error) {
				return baseline.Tsubame(ctx, bin, demoArgs...)
			}},
		} {
			fmt.Fprintf(stderr, "starting %s...\n", tg.label)
			t, err := tg.start()
			if err != nil {
				fmt.Fprintln(stderr, "tsubame bench gateway:", err)
				return 1
			}
			measure := measureTarget
			if *clientFlag == "wrk" {
				measure = measureTargetWrk
			}
			r, err := measure(ctx, t, *concurrency, *warmup, *duration)
			t.Stop(shutdownGrace)
			if err != nil {
				fmt.Fprintln(stderr, "tsubame bench gateway:", err)
				return 1
			}
			if r.failed > 0 {
				fmt.Fprintf(stderr, "%s: %d errors (first: %s)\n", tg.label, r.failed, r.firstErr)
			}
			r.label, r.baseline = tg.label, i == 0
			rows = append(rows, r)
		}
	}
	who := "Go clients in this process"
	if *clientFlag == "wrk" {
		who = "wrk -t2 connections"
	}
	fmt.Fprintf(stdout, "GET /hello, %d %s, %s each after %s warm-up, GOMAXPROCS %d, %d CPUs\n",
		*concurrency, who, *duration, *warmup, runtime.GOMAXPROCS(0), runtime.NumCPU())
	printGatewayRows(stdout, rows)
	return 0
}

// gatewayRow is one target's measurement.
type gatewayRow struct {
	label             string
	baseline          bool
	rate              float64
	p50, p99          time.Duration
	failed            int
	firstErr          string
	serverCPU, client float64 // µs per request; -1 where unreadable
}

// measureTarget loads t and reads the CPU its processes and this one used
// per answered request.
func measureTarget(ctx context.Context, t *baseline.Target, concurrency int, warmup, d time.Duration) (gatewayRow, error) {
	client := loadgen.NewClient(concurrency)
	defer client.CloseIdleConnections()
	do := loadgen.Get(client, t.URL+"/hello?name=bench", "Hello, bench!")
	lc := loadgen.Config{Concurrency: concurrency, Interval: time.Minute}
	if warmup > 0 {
		if _, err := loadgen.Run(ctx, lc, warmup, do); err != nil {
			return gatewayRow{}, err
		}
	}
	lc.Interval = loadgen.DefaultInterval
	server0, sok := t.CPU()
	me := cputime.Start()
	s, err := loadgen.Run(ctx, lc, d, do)
	if err != nil {
		return gatewayRow{}, err
	}
	server1, sok2 := t.CPU()
	mine, mok := me.Used()
	ok, failed, _ := s.Totals()
	lat := s.Latencies()
	r := gatewayRow{
		rate: float64(ok) / s.End().Seconds(), p50: loadgen.Percentile(lat, 50), p99: loadgen.Percentile(lat, 99),
		failed: failed, firstErr: s.FirstErr(), serverCPU: -1, client: -1,
	}
	if ok > 0 && sok && sok2 {
		r.serverCPU = float64((server1 - server0).Microseconds()) / float64(ok)
	}
	if ok > 0 && mok {
		r.client = float64(mine.Microseconds()) / float64(ok)
	}
	return r, nil
}

// measureTargetWrk is measureTarget with wrk as the client.
func measureTargetWrk(ctx context.Context, t *baseline.Target, concurrency int, warmup, d time.Duration) (gatewayRow, error) {
	url := t.URL + "/hello?name=bench"
	if warmup >= time.Second {
		if _, err := baseline.Wrk(ctx, url, concurrency, warmup); err != nil {
			return gatewayRow{}, err
		}
	}
	server0, sok := t.CPU()
	w, err := baseline.Wrk(ctx, url, concurrency, d)
	if err != nil {
		return gatewayRow{}, err
	}
	server1, sok2 := t.CPU()
	r := gatewayRow{rate: w.Rate, p50: w.P50, p99: w.P99, failed: w.Errors, firstErr: "non-2xx or socket errors (wrk)", serverCPU: -1, client: -1}
	if w.Requests > 0 && sok && sok2 {
		r.serverCPU = float64((server1 - server0).Microseconds()) / float64(w.Requests)
	}
	if w.Requests > 0 && w.CPU > 0 {
		r.client = float64(w.CPU.Microseconds()) / float64(w.Requests)
	}
	return r, nil
}

func printGatewayRows(w io.Writer, rows []gatewayRow) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\treq/s\tp50\tp99\terrors\tserver CPU µs/req\tclient CPU µs/req\treq/s vs baseline\tp99 vs baseline\tCPU/req vs baseline\t")
	var base gatewayRow
	cpu := func(v float64) string {
		if v < 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.1f", v)
	}
	for _, r := range rows {
		if r.baseline {
			base = r
		}
		ratio := "n/a"
		if r.serverCPU >= 0 && base.serverCPU > 0 {
			ratio = fmt.Sprintf("%.2fx", r.serverCPU/base.serverCPU)
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%d\t%s\t%s\t%.2f\t%.2fx\t%s\t\n", r.label, r.rate,
			r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond), r.failed, cpu(r.serverCPU), cpu(r.client),
			r.rate/base.rate, float64(r.p99)/float64(base.p99), ratio)
	}
	tw.Flush()
}

// benchPlain serves democluster.PlainHello until stopped.
func benchPlain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tsubame bench plain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "TCP `address` to serve on")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return 2
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(stderr, "tsubame bench plain:", err)
		return 1
	}
	srv := &http.Server{Handler: http.HandlerFunc(democluster.PlainHello)}
	fmt.Fprintf(stdout, "serving plain net/http on %s\n", ln.Addr())
	go func() { <-ctx.Done(); srv.Close() }()
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		fmt.Fprintln(stderr, "tsubame bench plain:", err)
		return 1
	}
	return 0
}
