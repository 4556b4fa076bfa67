package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tsubame-rt/tsubame/gateway"
)

func init() {
	register(command{"gateway", "run an HTTP gateway that turns requests into LPs", runGateway})
}

// shutdownGrace bounds a graceful stop: requests in flight get this long to
// be answered.
const shutdownGrace = 10 * time.Second

func runGateway(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tsubame gateway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	config := fs.String("config", "", "the gateway's TOML `file` (see testdata/gateway.toml, docs/gateway.md)")
	verbose := fs.Bool("v", false, "log at debug level")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: tsubame gateway --config FILE [-v]\n\nServes HTTP, HTTPS and HTTP/3 and sends each request into the cluster as an LP.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *config == "" || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	c, err := gateway.LoadConfig(*config)
	if err != nil {
		fmt.Fprintln(stderr, "tsubame gateway:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := gatewayLogger(stderr, *verbose)
	g, err := gateway.New(ctx, c, gateway.Options{Logger: log})
	if err != nil {
		fmt.Fprintln(stderr, "tsubame gateway:", err)
		return 1
	}
	scheme := "http"
	if g.HTTPS() {
		scheme = "https"
	}
	// One line a script (or the e2e test) can read the actual address from.
	admin := g.AdminAddr()
	if admin == "" {
		admin = "off"
	}
	fmt.Fprintf(stdout, "tsubame gateway %s: %s://%s (http/3 %v) quic %s gossip %s admin %s\n",
		g.Name(), scheme, g.HTTPAddr(), g.HTTP3(), g.QUICAddr(), g.GossipAddr(), admin)
	code := 0
	select {
	case <-ctx.Done():
	case err := <-g.Errors():
		log.Error("http listener failed", "err", err)
		code = 1
	}
	stop()
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := g.Shutdown(sctx); err != nil {
		log.Warn("shutdown", "err", err)
	}
	return code
}

// gatewayLogger is the text logger of the gateway and the demo.
func gatewayLogger(w io.Writer, debug bool) *slog.Logger {
	level := slog.LevelInfo
	if debug {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}
