package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

func init() {
	register(command{"bench", "run a benchmark scenario on loopback (tsubame bench -h lists them)", runBench})
	registerBench(benchScenario{"gateway", "/hello through Tsubame vs plain Go servers (--vs nginx: behind nginx), req/s and CPU per request", benchGateway})
	registerBench(benchScenario{"plain", "serve the plain net/http baseline (Hello, NAME!) until stopped: what `gateway --vs nginx` puts behind nginx", benchPlain})
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
