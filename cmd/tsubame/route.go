package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/tsubame-rt/tsubame/gateway"
)

func init() {
	register(command{"route", "add, remove or list a running gateway's routes (route add|rm|ls)", runRoute})
}

func runRoute(args []string, stdout, stderr io.Writer) int {
	usage := func() {
		fmt.Fprintln(stderr, "usage: tsubame route add|rm|ls --gateway ADDR --token-file F [--ca CA.pem] ...\n\n"+
			"  tsubame route add [--method M] [--input MODE] [--output MODE] [--content-type T] PATH COMPONENT KIND\n"+
			"  tsubame route rm [--method M] PATH\n"+
			"  tsubame route ls\n\n"+
			"Changes the route table of a running gateway through its admin API ([admin] in its\n"+
			"TOML file). Changes take effect at once and last until the gateway restarts: put\n"+
			"the routes you keep in its file. 'tsubame route add -h' shows the flags.")
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		usage()
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	sub := args[0]
	fs := flag.NewFlagSet("tsubame route "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	af := addAdminFlags(fs, "gateway", "127.0.0.1:7481", "the gateway's", 10*time.Second)
	var method, input, output, ctype *string
	switch sub {
	case "add":
		method = fs.String("method", "", "HTTP `method` (default: any)")
		input = fs.String("input", "", "input `mode`: none, body, query, query:NAME, path:NAME, request (default none)")
		output = fs.String("output", "", "output `mode`: body or response (default body)")
		ctype = fs.String("content-type", "", "response `type` in output mode body")
	case "rm":
		method = fs.String("method", "", "HTTP `method` of the route (default: the route for any method)")
	case "ls":
	default:
		fmt.Fprintf(stderr, "tsubame route: unknown subcommand %q\n\n", sub)
		usage()
		return 2
	}
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return 2
	}
	want := map[string]int{"add": 3, "rm": 1, "ls": 0}[sub]
	if len(pos) != want {
		fmt.Fprintf(stderr, "tsubame route %s: want %d arguments, got %d\n", sub, want, len(pos))
		fs.Usage()
		return 2
	}
	c, err := af.client(true)
	if err != nil {
		fmt.Fprintf(stderr, "tsubame route %s: %v\n", sub, err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *af.timeout)
	defer cancel()
	var l gateway.RouteList
	switch sub {
	case "add":
		body, _ := json.Marshal(gateway.RouteInfo{Route: gateway.Route{Method: *method, Path: pos[0], Component: pos[1], Kind: pos[2],
			Input: *input, Output: *output, ContentType: *ctype}})
		err = c.do(ctx, http.MethodPost, "/v1/routes", bytes.NewReader(body), int64(len(body)), "application/json", &l)
	case "rm":
		q := url.Values{"path": {pos[0]}}
		if *method != "" {
			q.Set("method", *method)
		}
		err = c.do(ctx, http.MethodDelete, "/v1/routes?"+q.Encode(), nil, -1, "", &l)
	case "ls":
		err = c.do(ctx, http.MethodGet, "/v1/routes", nil, -1, "", &l)
	}
	if err != nil {
		fmt.Fprintf(stderr, "tsubame route %s: %v\n", sub, err)
		return 1
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "METHOD\tPATH\tCOMPONENT\tKIND\tINPUT\tOUTPUT\tSOURCE")
	for _, r := range l.Routes {
		m := r.Method
		if m == "" {
			m = "*"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m, r.Path, r.Component, r.Kind, orDash(r.Input), orDash(r.Output), r.Source)
	}
	_ = tw.Flush()
	return 0
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
