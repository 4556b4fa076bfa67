package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tsubame-rt/tsubame/internal/adminapi"
)

func init() {
	register(command{"components", "list the components nodes hold: version, size, origin, kinds served, load", runComponents})
}

func runComponents(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tsubame components", flag.ContinueOnError)
	fs.SetOutput(stderr)
	af := addAdminFlags(fs, "admin", "127.0.0.1:7480", "a node's", 10*time.Second)
	all := fs.Bool("all", false, "ask every live node (through the node at --admin)")
	asJSON := fs.Bool("json", false, "print the raw /v1/components JSON")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: tsubame components --admin ADDR --token-file F [--ca CA.pem] [--all] [--json]\n\n"+
			"Lists the components a node holds (every node with --all): name, version (the\n"+
			"module's short SHA-256), size, how it got there (config, upload, peer, auto), the\n"+
			"request kinds it has served with counts, steps per second and the share of the\n"+
			"node's workers it kept busy over the last second, and LPs queued for it; then the\n"+
			"old versions a node keeps for LPs suspended in them.")
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 0 {
		fs.Usage()
		return 2
	}
	c, err := af.client(true)
	if err != nil {
		fmt.Fprintln(stderr, "tsubame components:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *af.timeout)
	defer cancel()
	path := "/v1/components"
	if *all {
		path += "?all=1"
	}
	var l adminapi.ComponentsList
	if err := c.do(ctx, http.MethodGet, path, nil, -1, "", &l); err != nil {
		fmt.Fprintln(stderr, "tsubame components:", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(l)
		return 0
	}
	printComponents(stdout, l)
	return 0
}

func printComponents(w io.Writer, l adminapi.ComponentsList) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tCOMPONENT\tVERSION\tSIZE\tSOURCE\tINSTALLED\tKINDS\tSTEPS/S\tLOAD\tQUEUED")
	var retained []string
	for _, rep := range l.Nodes {
		if len(rep.Components) == 0 {
			fmt.Fprintf(tw, "%s\t-\t\t\t\t\t\t\t\t\n", rep.Node)
		}
		for _, ci := range rep.Components {
			src := ci.Source
			if ci.Auto && ci.By != "" {
				src += " by " + ci.By
			}
			at := "-"
			if ci.InstalledAt != nil {
				at = ci.InstalledAt.Local().Format(time.DateTime)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.1f\t%.2f\t%d\n", rep.Node, ci.Name, ci.Version,
				byteSize(int64(ci.Size)), src, at, kinds(ci.Kinds), ci.StepsPerSec, ci.Load, ci.Queued)
		}
		for _, r := range rep.Retained {
			retained = append(retained, fmt.Sprintf("  %s keeps %s until %s (%d queued LPs need it)",
				rep.Node, r.Hash[:12], r.KeepUntil.Local().Format(time.TimeOnly), r.Queued))
		}
	}
	_ = tw.Flush()
	if len(retained) > 0 {
		fmt.Fprintln(w, "\nold versions kept for suspended LPs:")
		fmt.Fprintln(w, strings.Join(retained, "\n"))
	}
	if len(l.Errors) > 0 {
		fmt.Fprintln(w, "\nnodes that did not answer:")
		names := make([]string, 0, len(l.Errors))
		for n := range l.Errors {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprintf(w, "  %s: %s\n", n, l.Errors[n])
		}
	}
}

// kinds renders "get:12,put:3", busiest first.
func kinds(m map[string]uint64) string {
	if len(m) == 0 {
		return "-"
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool {
		if m[names[i]] != m[names[j]] {
			return m[names[i]] > m[names[j]]
		}
		return names[i] < names[j]
	})
	parts := make([]string, len(names))
	for i, k := range names {
		parts[i] = fmt.Sprintf("%s:%d", k, m[k])
	}
	return strings.Join(parts, ",")
}
