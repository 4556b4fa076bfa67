package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tsubame-rt/tsubame/node"
)

func init() {
	register(command{"status", "show the live nodes, their components, load and traffic", runStatus})
}

func runStatus(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tsubame status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("admin", "127.0.0.1:7480", "a node's admin `address` (its `admin` setting)")
	asJSON := fs.Bool("json", false, "print the raw /v1/status JSON")
	timeout := fs.Duration("timeout", 5*time.Second, "give up after this long")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: tsubame status [--admin ADDR] [--json]\n\n"+
			"Asks one node for its view of the cluster and prints every live member:\n"+
			"its components, load, run queue and LPs in and out per second.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 || *timeout <= 0 {
		fs.Usage()
		return 2
	}
	url := *addr
	if !strings.Contains(url, "://") {
		url = "http://" + url
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	st, raw, err := fetchStatus(ctx, strings.TrimSuffix(url, "/")+"/v1/status")
	if err != nil {
		fmt.Fprintln(stderr, "tsubame status:", err)
		return 1
	}
	if *asJSON {
		_, _ = stdout.Write(raw)
		return 0
	}
	printStatus(stdout, st)
	return 0
}

func fetchStatus(ctx context.Context, url string) (node.Status, []byte, error) {
	var st node.Status
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return st, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return st, nil, fmt.Errorf("read %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return st, nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return st, nil, fmt.Errorf("%s: not a status document: %w", url, err)
	}
	return st, raw, nil
}

// printStatus writes one row per member. A member whose load report is stale
// is marked: the scheduler does not send it work.
func printStatus(w io.Writer, st node.Status) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tROLE\tCOMPONENTS\tLOAD\tQUEUE\tWORKERS\tIN/S\tOUT/S\tREPORT")
	for _, m := range st.Members {
		name := m.Name
		if m.Self {
			name += " *"
		}
		role := "node"
		if m.Gateway {
			role = "gateway"
		}
		var comps []string
		for _, c := range m.Components {
			if c.Auto && c.InstalledAt != nil {
				// Auto-grow installed it: say so, and when.
				comps = append(comps, c.Name+"(auto "+c.InstalledAt.Local().Format(time.TimeOnly)+")")
				continue
			}
			comps = append(comps, c.Name)
		}
		cs := strings.Join(comps, ",")
		if cs == "" {
			cs = "-"
		}
		report := "now"
		switch {
		case m.Self:
		case m.ReportAgeMS < 0:
			report = "none yet"
		case !m.Fresh:
			report = fmt.Sprintf("STALE %dms", m.ReportAgeMS)
		default:
			report = fmt.Sprintf("%dms", m.ReportAgeMS)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.2f\t%d\t%d\t%.1f\t%.1f\t%s\n",
			name, role, cs, m.Load, m.Queue, m.Workers, m.InPerSec, m.OutPerSec, report)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "\n%d members as seen by %s at %s (* answered)\n", len(st.Members), st.Node, st.Time.Format(time.RFC3339))
	if len(st.Autogrow) > 0 {
		fmt.Fprintf(w, "\nauto-grow actions of %s:\n", st.Node)
		for _, ev := range st.Autogrow {
			line := fmt.Sprintf("  %s  %s %s on %s (%d ms)", ev.At.Local().Format(time.DateTime), ev.Action, ev.Component, ev.Node, ev.Millis)
			if ev.Error != "" {
				line += ": FAILED: " + ev.Error
			}
			fmt.Fprintln(w, line)
		}
	}
}
