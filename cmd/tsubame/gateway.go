package main

import (
	"context"
	"fmt"
	"io"

	"github.com/tsubame-rt/tsubame/gateway"
)

func init() {
	register(command{"gateway", "run an HTTP gateway that turns requests into LPs", runGateway})
}

func runGateway(args []string, stdout, stderr io.Writer) int {
	return serve(daemon{
		name:       "gateway",
		about:      "Serves HTTP, HTTPS and HTTP/3 and sends each request into the cluster as an LP.",
		configHelp: "the gateway's TOML `file` (see testdata/gateway.toml, docs/gateway.md)",
		start:      startGateway,
	}, args, stdout, stderr)
}

func startGateway(ctx context.Context, config string, logs logMaker, stdout io.Writer) (server, <-chan error, error) {
	c, err := gateway.LoadConfig(config)
	if err != nil {
		return nil, nil, err
	}
	log, err := logs(c.Log)
	if err != nil {
		return nil, nil, err
	}
	g, err := gateway.New(ctx, c, gateway.Options{Logger: log})
	if err != nil {
		return nil, nil, err
	}
	scheme := "http"
	if g.HTTPS() {
		scheme = "https"
	}
	admin := g.AdminAddr()
	if admin == "" {
		admin = "off"
	}
	fmt.Fprintf(stdout, "tsubame gateway %s: %s://%s (http/3 %v) quic %s gossip %s admin %s\n",
		g.Name(), scheme, g.HTTPAddr(), g.HTTP3(), g.QUICAddr(), g.GossipAddr(), admin)
	return g, g.Errors(), nil
}
