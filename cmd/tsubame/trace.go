package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tsubame-rt/tsubame/internal/obs"
)

func init() {
	register(command{"trace", "print the journey of one LP (or the recent ones) from the members' journey rings", runTrace})
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func runTrace(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tsubame trace", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var from listFlag
	fs.Var(&from, "from", "a member to ask, repeatable: a gateway's address with [http] ui (the demo's), or a node's admin address with admin_plain (default 127.0.0.1:8080)")
	fs.Var(&from, "gateway", "same as --from")
	recent := fs.Bool("recent", false, "list the most recent journeys instead of one LP's")
	n := fs.Int("n", 20, "with --recent, how many")
	asJSON := fs.Bool("json", false, "print the journey JSON")
	timeout := fs.Duration("timeout", 5*time.Second, "give up after this long")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: tsubame trace [--from ADDR]... LP-ID\n       tsubame trace [--from ADDR]... --recent [-n N]\n\n"+
			"Prints where an LP ran, step by step: node, component and version, outcome, queue wait,\n"+
			"step time and why it moved next. Every node and gateway keeps its recent journeys in\n"+
			"memory; an LP's origin holds its whole journey, a node it passed through the part up to\n"+
			"its departure. LP-ID is the Tsubame-Lp response header (8 or more hex digits do).")
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if (*recent && len(pos) != 0) || (!*recent && len(pos) != 1) || *n <= 0 {
		fs.Usage()
		return 2
	}
	if len(from) == 0 {
		from = listFlag{"127.0.0.1:8080"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if *recent {
		var all []obs.Journey
		var errs []error
		for _, addr := range from {
			var js obs.Journeys
			if err := getJSON(ctx, baseURL(addr)+fmt.Sprintf("/v1/journeys?limit=%d", *n), &js); err != nil {
				errs = append(errs, err)
				continue
			}
			all = append(all, js.Journeys...)
		}
		if len(all) == 0 && len(errs) > 0 {
			fmt.Fprintln(stderr, "tsubame trace:", errors.Join(errs...))
			return 1
		}
		if *asJSON {
			return writeJSONOut(stdout, all)
		}
		printRecent(stdout, all)
		return 0
	}
	id := strings.ToLower(pos[0])
	var best *obs.Journey
	var errs []error
	for _, addr := range from {
		var j obs.Journey
		if err := getJSON(ctx, baseURL(addr)+"/v1/journeys/"+id, &j); err != nil {
			errs = append(errs, err)
			continue
		}
		if best == nil || (j.Finished && !best.Finished) || (j.Finished == best.Finished && len(j.Steps) > len(best.Steps)) {
			best = &j
		}
	}
	if best == nil {
		fmt.Fprintln(stderr, "tsubame trace:", errors.Join(errs...))
		return 1
	}
	if *asJSON {
		return writeJSONOut(stdout, best)
	}
	printJourney(stdout, *best)
	return 0
}

func baseURL(addr string) string {
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	return strings.TrimSuffix(addr, "/")
}

func getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: %s: %s", url, resp.Status, strings.TrimSpace(string(b)))
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("%s: %w", url, err)
	}
	return nil
}

func writeJSONOut(w io.Writer, v any) int {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return 1
	}
	return 0
}

func printJourney(w io.Writer, j obs.Journey) {
	fmt.Fprintf(w, "LP %s", j.ID)
	if j.TraceID != "" {
		fmt.Fprintf(w, "  trace %s", j.TraceID)
	}
	fmt.Fprintln(w)
	what := j.Component + "/" + j.Kind
	if j.Route != "" {
		what = j.Route + " -> " + what
	}
	status := j.Status
	if j.Code != 0 {
		status += fmt.Sprintf(" (code %d)", j.Code)
	}
	fmt.Fprintf(w, "  %s  %s  attempt %d  origin %s  recorded by %s at %s", what, status, j.Attempt, j.Origin,
		j.RecordedBy, j.At.Local().Format("15:04:05.000"))
	if j.ElapsedMS > 0 {
		fmt.Fprintf(w, "  %.2f ms", j.ElapsedMS)
	}
	fmt.Fprintln(w)
	if j.Dropped > 0 {
		fmt.Fprintf(w, "  (%d earlier steps dropped from the LP's bounded trace)\n", j.Dropped)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  #\tNODE\tCOMPONENT/KIND\tVERSION\tOUTCOME\tQUEUE WAIT\tSTEP\tTHEN")
	for i, s := range j.Steps {
		then := "stayed"
		if s.Next != "" {
			then = "moved: " + s.Next
		}
		fmt.Fprintf(tw, "  %d\t%s\t%s/%s\t%s\t%s\t%s\t%s\t%s\n", i+1, s.Node, s.Component, s.Kind, s.Version, s.Outcome,
			micros(s.WaitUS), micros(s.StepUS), then)
	}
	tw.Flush()
}

func micros(us uint32) string {
	d := time.Duration(us) * time.Microsecond
	if d < time.Millisecond {
		return fmt.Sprintf("%dµs", us)
	}
	return d.Round(10 * time.Microsecond).String()
}

func printRecent(w io.Writer, js []obs.Journey) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LP\tAT\tROUTE\tPATH\tSTATUS\tMS\tRECORDED BY")
	for _, j := range js {
		path := []string{j.Origin}
		for _, s := range j.Steps {
			if s.Node != path[len(path)-1] {
				path = append(path, s.Node)
			}
		}
		if j.Finished && path[len(path)-1] != j.Origin {
			path = append(path, j.Origin)
		}
		route := j.Route
		if route == "" {
			route = j.Component + "/" + j.Kind
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.2f\t%s\n", j.ID[:12], j.At.Local().Format("15:04:05.000"), route,
			strings.Join(path, " > "), j.Status, j.ElapsedMS, j.RecordedBy)
	}
	tw.Flush()
}
