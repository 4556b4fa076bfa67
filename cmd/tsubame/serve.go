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

	"github.com/tsubame-rt/tsubame/internal/obs"
)

// shutdownGrace bounds a graceful stop: requests in flight get this long to
// be answered, queued LPs to be handed on.
const shutdownGrace = 10 * time.Second

// server is what serve needs of a started node or gateway.
type server interface {
	Shutdown(ctx context.Context) error
}

// daemon is a subcommand that runs a server until it is told to stop:
// `tsubame node` and `tsubame gateway`.
type daemon struct {
	name       string // the subcommand: "node" runs as `tsubame node`
	about      string // what the usage says after its first line
	configHelp string // the --config flag's help; its `file` names the value
	// start loads the config file and starts the server, logging to the
	// logger logs makes from the config's [log] section, and prints the one
	// line a script (or the e2e test) reads its actual addresses from.
	// failed, if not nil, delivers a failure that ends the run early (a
	// gateway's HTTP listener failing).
	start func(ctx context.Context, config string, logs logMaker, stdout io.Writer) (srv server, failed <-chan error, err error)
	// failedStopExits makes a failed graceful stop exit 1: a node that
	// could not drain has lost LPs.
	failedStopExits bool
}

// serve parses `--config FILE [-v]`, starts d and runs it until SIGINT or
// SIGTERM (or its failure), then stops it gracefully within shutdownGrace.
func serve(d daemon, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tsubame "+d.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	config := fs.String("config", "", d.configHelp)
	verbose := fs.Bool("v", false, "log at debug level (whatever [log] level says)")
	format := fs.String("log-format", "", "`text` or `json` (default: [log] format, else text on a terminal and JSON otherwise)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: tsubame %s --config FILE [-v]\n\n%s\n", d.name, d.about)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *config == "" || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := textLogger(stderr, *verbose)
	logs := func(c obs.LogConfig) (*slog.Logger, error) {
		if *format != "" {
			c.Format = *format
		}
		l, err := obs.NewLogger(stderr, c, *verbose)
		if err == nil {
			log = l
		}
		return l, err
	}
	srv, failed, err := d.start(ctx, *config, logs, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "tsubame %s: %v\n", d.name, err)
		return 1
	}
	code := 0
	select {
	case <-ctx.Done():
	case err := <-failed:
		log.Error("listener failed", "err", err)
		code = 1
	}
	stop() // a second signal kills the process the default way
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown", "err", err)
		if d.failedStopExits {
			code = 1
		}
	}
	return code
}

// logMaker makes a server's logger from its config's [log] section and the
// command line.
type logMaker func(obs.LogConfig) (*slog.Logger, error)

// textLogger is the log of the demo, and of a node or gateway until its
// config is read: text on w, at debug level if debug.
func textLogger(w io.Writer, debug bool) *slog.Logger {
	level := slog.LevelInfo
	if debug {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}
