package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/tsubame-rt/tsubame/internal/democluster"
)

func init() {
	register(command{"demo", "run a local cluster (N nodes + a gateway) serving the demo app", runDemo})
}

func runDemo(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return demoMain(ctx, args, stdout, stderr)
}

// demoMain runs the demo until ctx ends (Ctrl-C, or a test).
func demoMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tsubame demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	nodes := fs.Int("nodes", 3, "how many nodes to start (1 to 64)")
	httpAddr := fs.String("http", "127.0.0.1:8080", "the gateway's `address`: TCP for HTTP/1.1, UDP for HTTP/3 (port 0 picks one)")
	caOut := fs.String("ca-out", "", "write the demo CA's certificate (PEM) to `file`, for HTTP/3 clients to trust")
	verbose := fs.Bool("v", false, "log every member at debug level")
	placement := fs.String("placement", "spread", "`spread`: hello and greet on alternate nodes, so every request migrates; all: both on every node")
	standalone := fs.Bool("standalone-gateway", false, "run the gateway as a member of its own instead of inside node-1")
	appName := fs.String("app", "hello", "`app` to serve: hello, or images (the image service, docs/images.md, with sample images uploaded)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: tsubame demo [--nodes N] [--placement spread|all] [--http ADDR] [--ca-out FILE] [-v]\n\n"+
			"Starts N nodes in this process on loopback, node-1 serving HTTP itself (the gateway embedded),\n"+
			"with an in-memory CA and the demo components embedded in the binary, and serves\n"+
			"GET /hello?name=NAME. Ctrl-C stops it.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 || *nodes < 1 || *nodes > 64 {
		fs.Usage()
		return 2
	}
	app, err := democluster.PlacedApp(*placement)
	if err != nil {
		fmt.Fprintln(stderr, "tsubame demo: --placement:", err)
		return 2
	}
	switch *appName {
	case "hello":
	case "images":
		app = democluster.ImagesApp()
	default:
		fmt.Fprintf(stderr, "tsubame demo: --app %q: want hello or images\n", *appName)
		return 2
	}
	log := textLogger(io.Discard, false)
	if *verbose {
		log = textLogger(stderr, true)
	}
	fmt.Fprintf(stdout, "Starting %d nodes and a gateway (compiling the components takes a few seconds)...\n", *nodes)
	cfg := democluster.Config{Nodes: *nodes, HTTP: *httpAddr, Logger: log, App: app, Embed: !*standalone}
	if *caOut != "" {
		// Written before anything listens: a client that sees the gateway answer finds the file.
		cfg.OnCA = func(pem []byte) error { return os.WriteFile(*caOut, pem, 0o644) } // public: a certificate, no key
	}
	d, err := democluster.Start(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "tsubame demo:", err)
		if errors.Is(err, syscall.EADDRINUSE) {
			fmt.Fprintf(stderr, "The gateway address %s is busy: choose another with --http, e.g. --http 127.0.0.1:0\n", *httpAddr)
		}
		return 1
	}
	addr := d.Gateway.HTTPAddr()
	_, port, _ := net.SplitHostPort(addr)
	where := "in " + d.Gateway.Name()
	if *standalone {
		where = "standalone"
	}
	fmt.Fprintf(stdout, "Tsubame demo: %d nodes, gateway at %s (%s; HTTP/1.1 on TCP, HTTP/3 on UDP port %s)\n", *nodes, d.URL(), where, port)
	for i, n := range d.Nodes {
		fmt.Fprintf(stdout, "  %s holds %v\n", n.Name(), app.Placement(i, *nodes))
	}
	fmt.Fprintf(stdout, "Dashboard: %s/ui/\nMetrics:   %s/metrics\n", d.URL(), d.URL())
	if *appName == "images" {
		if err := democluster.UploadSamples(ctx, d.URL()); err != nil {
			fmt.Fprintln(stderr, "tsubame demo: upload the sample images:", err)
			d.Close()
			return 1
		}
		fmt.Fprintf(stdout, "Sample images uploaded. Try:\n  open %[1]s/img/  (the gallery)\n"+
			"  curl -o small.png '%[1]s/img/noise.jpg?w=200&fmt=png'\n  curl -T photo.jpg %[1]s/img/photo.jpg\n", d.URL())
	} else {
		fmt.Fprintf(stdout, "Try:\n  curl -i '%s/hello?name=world'\n", d.URL())
		if *caOut != "" {
			fmt.Fprintf(stdout, "  tsubame get --http3 --ca %s 'https://%s/hello?name=world'\n", *caOut, addr)
		} else {
			fmt.Fprintf(stdout, "  tsubame get --http3 ... (start with --ca-out FILE to get the CA HTTP/3 clients must trust)\n")
		}
	}
	fmt.Fprintf(stdout, "  tsubame trace --gateway %s --recent   (or an LP ID from the Tsubame-Lp header)\n", d.URL())
	fmt.Fprintf(stdout, "  tsubame status --admin %s\nCtrl-C stops it.\n", d.Nodes[0].AdminAddr())

	code := 0
	select {
	case <-ctx.Done():
	case err := <-d.Gateway.Errors():
		fmt.Fprintln(stderr, "tsubame demo: gateway:", err)
		code = 1
	}
	fmt.Fprintln(stdout, "Stopping...")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := d.Shutdown(sctx); err != nil {
		fmt.Fprintln(stderr, "tsubame demo: shutdown:", err)
		code = 1
	}
	return code
}
