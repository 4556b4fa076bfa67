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

	"github.com/tsubame-rt/tsubame/internal/adminapi"
)

func init() {
	register(command{"status", "show the live nodes, their components, load and traffic", runStatus})
}

func runStatus(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tsubame status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	af := addAdminFlags(fs, "admin", "127.0.0.1:7480", "a node's", 5*time.Second)
	asJSON := fs.Bool("json", false, "print the raw /v1/status JSON")
	wait := fs.Duration("wait", 0, "keep asking for up to this long while the node does not answer yet, or has fewer than --members live members")
	members := fs.Int("members", 0, "with --wait: wait until the node sees at least `N` live members (itself included) with fresh load reports")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: tsubame status [--admin ADDR] [--ca CA.pem] [--token-file F] [--json] [--wait D [--members N]]\n\n"+
			"Asks one node for its view of the cluster and prints every live member:\n"+
			"its components, load, run queue and LPs in and out per second. ADDR without a scheme\n"+
			"is asked over HTTPS when a CA is given (--ca or $"+envCA+"), else over the plain\n"+
			"HTTP the node serves with admin_plain = true; http:// or https:// choose explicitly.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 || *af.timeout <= 0 || *wait < 0 || *members < 0 {
		fs.Usage()
		return 2
	}
	addr := *af.addr
	if !strings.Contains(addr, "://") && *af.caFile == "" {
		addr = "http://" + addr // the node's plain status port
	}
	var c *adminClient
	if strings.HasPrefix(addr, "http://") {
		c = &adminClient{base: strings.TrimSuffix(addr, "/"), http: &http.Client{}}
	} else {
		var err error
		*af.addr = addr
		if c, err = af.client(false); err != nil {
			fmt.Fprintln(stderr, "tsubame status:", err)
			return 2
		}
	}
	deadline := time.Now().Add(*wait)
	for {
		st, raw, err := fetchStatus(c, *af.timeout)
		missing := ""
		if err == nil && *members > 0 {
			if n := liveMembers(st); n < *members {
				missing = fmt.Sprintf("%d of %d members live with fresh reports", n, *members)
			}
		}
		if (err != nil || missing != "") && time.Now().Before(deadline) {
			time.Sleep(200 * time.Millisecond)
			continue
		}
		if err != nil {
			fmt.Fprintln(stderr, "tsubame status:", err)
			return 1
		}
		if *asJSON {
			_, _ = stdout.Write(raw)
		} else {
			printStatus(stdout, st)
		}
		if missing != "" {
			fmt.Fprintf(stderr, "tsubame status: only %s after %s\n", missing, *wait)
			return 1
		}
		return 0
	}
}

// liveMembers counts the members a status shows with a fresh load report
// (the node itself always).
func liveMembers(st adminapi.Status) int {
	n := 0
	for _, m := range st.Members {
		if m.Self || m.Fresh {
			n++
		}
	}
	return n
}

func fetchStatus(c *adminClient, timeout time.Duration) (adminapi.Status, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var raw json.RawMessage
	var st adminapi.Status
	if err := c.do(ctx, http.MethodGet, "/v1/status", nil, -1, "", &raw); err != nil {
		return st, nil, fmt.Errorf("%s: %w", c.base, err)
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return st, nil, fmt.Errorf("%s: not a status document: %w", c.base, err)
	}
	return st, raw, nil
}

// printStatus writes one row per member. A member whose load report is stale
// is marked: the scheduler does not send it work.
func printStatus(w io.Writer, st adminapi.Status) {
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
	printBuckets(w, st)
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

// printBuckets lists the KV buckets of the answering node with each one's
// backend and whether that backend answered lately.
func printBuckets(w io.Writer, st adminapi.Status) {
	if len(st.Buckets) == 0 {
		return
	}
	fmt.Fprintf(w, "\nKV buckets of %s:\n", st.Node)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "BUCKET\tBACKEND\tJOURNAL\tGRANTED\tHEALTH")
	for _, b := range st.Buckets {
		health := "ok"
		if !b.Healthy {
			health = "DOWN: " + b.Error
		}
		journal := "on"
		if !b.Journal {
			journal = "off"
		}
		granted := strings.Join(b.Granted, ",")
		if b.Private {
			granted += " (private)"
		}
		fmt.Fprintf(tw, "%s\t%s (%s)\t%s\t%s\t%s\n", b.Name, b.Backend, b.Type, journal, granted, health)
	}
	_ = tw.Flush()
}
