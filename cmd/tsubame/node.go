package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/tsubame-rt/tsubame/node"
)

func init() {
	register(command{"node", "run a node that holds components and runs LPs", runNode})
}

func runNode(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tsubame node", flag.ContinueOnError)
	fs.SetOutput(stderr)
	config := fs.String("config", "", "the node's TOML `file` (see testdata/node.toml, docs/config.md)")
	verbose := fs.Bool("v", false, "log at debug level")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: tsubame node --config FILE [-v]\n\n"+
			"Runs a node: loads its components, joins the cluster, runs and migrates LPs.\n"+
			"SIGINT or SIGTERM stops it gracefully (queued LPs are handed to peers).")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *config == "" || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	c, err := node.LoadConfig(*config)
	if err != nil {
		fmt.Fprintln(stderr, "tsubame node:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := gatewayLogger(stderr, *verbose)
	n, err := node.New(ctx, c, node.Options{Logger: log})
	if err != nil {
		fmt.Fprintln(stderr, "tsubame node:", err)
		return 1
	}
	// One line a script (or the e2e test) can read the actual addresses from.
	fmt.Fprintf(stdout, "tsubame node %s: quic %s gossip %s admin %s\n", n.Name(), n.QUICAddr(), n.GossipAddr(), n.AdminAddr())
	<-ctx.Done()
	stop() // a second signal kills the process the default way
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := n.Shutdown(sctx); err != nil {
		log.Warn("shutdown", "err", err)
		return 1
	}
	return 0
}
