package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

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
		configHelp:      "the node's TOML `file` (see testdata/node.toml, docs/config.md)",
		start:           startNode,
		failedStopExits: true,
	}, args, stdout, stderr)
}

func startNode(ctx context.Context, config string, log *slog.Logger, stdout io.Writer) (server, <-chan error, error) {
	c, err := node.LoadConfig(config)
	if err != nil {
		return nil, nil, err
	}
	if err := c.CheckFiles(config); err != nil {
		return nil, nil, fmt.Errorf("files the config names cannot be read:\n%w", err)
	}
	n, err := node.New(ctx, c, node.Options{Logger: log})
	if err != nil {
		return nil, nil, err
	}
	fmt.Fprintf(stdout, "tsubame node %s: quic %s gossip %s admin %s\n", n.Name(), n.QUICAddr(), n.GossipAddr(), n.AdminAddr())
	return n, nil, nil
}
