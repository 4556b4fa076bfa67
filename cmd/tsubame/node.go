package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/tsubame-rt/tsubame/gateway"
	"github.com/tsubame-rt/tsubame/internal/nodegateway"
	"github.com/tsubame-rt/tsubame/node"
)

func init() {
	register(command{"node", "run a node that holds components and runs LPs", runNode})
}

func runNode(args []string, stdout, stderr io.Writer) int {
	return serve(daemon{
		name: "node",
		about: "Runs a node: loads its components, joins the cluster, runs and migrates LPs.\n" +
			"SIGINT or SIGTERM stops it gracefully (queued LPs are handed to peers).",
		configHelp:      "the node's TOML `file` (see testdata/node.toml, docs/config.md); a [gateway] section makes it serve HTTP too (docs/gateway.md)",
		start:           startNode,
		failedStopExits: true,
	}, args, stdout, stderr)
}

func startNode(ctx context.Context, config string, logs logMaker, stdout io.Writer) (server, <-chan error, error) {
	c, gc, err := nodegateway.LoadConfig(config)
	if err != nil {
		return nil, nil, err
	}
	if err := c.CheckFiles(config); err != nil {
		return nil, nil, fmt.Errorf("files the config names cannot be read:\n%w", err)
	}
	log, err := logs(c.Log)
	if err != nil {
		return nil, nil, err
	}
	if gc == nil {
		n, err := node.New(ctx, c, node.Options{Logger: log})
		if err != nil {
			return nil, nil, err
		}
		fmt.Fprintf(stdout, "tsubame node %s: quic %s gossip %s admin %s\n", n.Name(), n.QUICAddr(), n.GossipAddr(), n.AdminAddr())
		return n, nil, nil
	}
	n, g, err := nodegateway.Start(ctx, c, *gc, node.Options{Logger: log}, gateway.Options{Logger: log})
	if err != nil {
		return nil, nil, err
	}
	scheme := "http"
	if g.HTTPS() {
		scheme = "https"
	}
	fmt.Fprintf(stdout, "tsubame node %s: quic %s gossip %s admin %s gateway %s://%s (http/3 %v)\n",
		n.Name(), n.QUICAddr(), n.GossipAddr(), n.AdminAddr(), scheme, g.HTTPAddr(), g.HTTP3())
	return servingNode{n, g}, g.Errors(), nil
}

// servingNode is a node with its gateway embedded: the gateway stops first
// (no new requests, those in flight answered), then the node drains.
type servingNode struct {
	n *node.Node
	g *gateway.Gateway
}

func (s servingNode) Shutdown(ctx context.Context) error {
	return errors.Join(s.g.Shutdown(ctx), s.n.Shutdown(ctx))
}
