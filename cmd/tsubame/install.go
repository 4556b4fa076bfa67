package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/tsubame-rt/tsubame/internal/adminapi"
)

func init() {
	register(command{"install", "upload a component to a running cluster (validated, then served at once)", runInstall})
	register(command{"remove", "remove a component from nodes of a running cluster", runRemove})
}

func runInstall(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tsubame install", flag.ContinueOnError)
	fs.SetOutput(stderr)
	af := addAdminFlags(fs, "admin", "127.0.0.1:7480", "a node's", 5*time.Minute)
	nodes := fs.String("nodes", "", "install on these `nodes` (comma-separated names; default: the node at --admin)")
	all := fs.Bool("all", false, "install on every live node")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: tsubame install --admin ADDR --token-file F [--ca CA.pem] NAME FILE.wasm [--nodes a,b | --all]\n\n"+
			"Uploads FILE.wasm to the node at ADDR, which validates it (size, wasm, ABI version and\n"+
			"exports, allowed imports, compiles under its limits), keeps it in its module store and\n"+
			"installs it as component NAME on the chosen nodes; they fetch it from that node over\n"+
			"the cluster's QUIC connections. The component serves as soon as this returns; LPs\n"+
			"suspended in an older version finish on it. A refused module changes nothing.")
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 2 {
		fs.Usage()
		return 2
	}
	name, file := pos[0], pos[1]
	query, err := targetQuery(*nodes, *all)
	if err != nil {
		fmt.Fprintln(stderr, "tsubame install:", err)
		return 2
	}
	c, err := af.client(true)
	if err != nil {
		fmt.Fprintln(stderr, "tsubame install:", err)
		return 2
	}
	f, err := os.Open(file)
	if err != nil {
		fmt.Fprintln(stderr, "tsubame install:", err)
		return 1
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		fmt.Fprintln(stderr, "tsubame install:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), *af.timeout)
	defer cancel()
	body := newProgress(f, st.Size(), filepath.Base(file), stderr)
	var res adminapi.InstallResponse
	err = c.do(ctx, http.MethodPut, "/v1/components/"+url.PathEscape(name)+query, body, st.Size(), "application/wasm", &res)
	body.done()
	var af2 *apiFailure
	if err != nil && !errors.As(err, &af2) {
		unknownOutcome(stderr, "install", name, *af.addr, err)
		return 1
	}
	if err != nil && len(res.Results) == 0 {
		fmt.Fprintf(stderr, "tsubame install: %s refused: %v\n", name, err)
		return 1
	}
	printResults(stdout, "installed", res)
	if err != nil {
		fmt.Fprintf(stderr, "tsubame install: %s\n", failedOn(res))
		return 1
	}
	return 0
}

func runRemove(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tsubame remove", flag.ContinueOnError)
	fs.SetOutput(stderr)
	af := addAdminFlags(fs, "admin", "127.0.0.1:7480", "a node's", time.Minute)
	nodes := fs.String("nodes", "", "remove from these `nodes` (comma-separated; default: the node at --admin)")
	all := fs.Bool("all", false, "remove from every live node")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: tsubame remove --admin ADDR --token-file F [--ca CA.pem] NAME [--nodes a,b | --all]\n\n"+
			"Removes component NAME from the chosen nodes. LPs queued for it there go to other\n"+
			"holders; LPs suspended in it still resume in their version while any node keeps it.")
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 {
		fs.Usage()
		return 2
	}
	query, err := targetQuery(*nodes, *all)
	if err != nil {
		fmt.Fprintln(stderr, "tsubame remove:", err)
		return 2
	}
	c, err := af.client(true)
	if err != nil {
		fmt.Fprintln(stderr, "tsubame remove:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *af.timeout)
	defer cancel()
	var res adminapi.InstallResponse
	err = c.do(ctx, http.MethodDelete, "/v1/components/"+url.PathEscape(pos[0])+query, nil, -1, "", &res)
	var fail *apiFailure
	if err != nil && !errors.As(err, &fail) {
		unknownOutcome(stderr, "remove", pos[0], *af.addr, err)
		return 1
	}
	if err != nil && len(res.Results) == 0 {
		fmt.Fprintf(stderr, "tsubame remove: %s: %v\n", pos[0], err)
		return 1
	}
	printResults(stdout, "removed", res)
	if err != nil {
		if fail.status == http.StatusNotFound {
			fmt.Fprintf(stderr, "tsubame remove: none of the nodes holds %s\n", pos[0])
		} else {
			fmt.Fprintf(stderr, "tsubame remove: %s\n", failedOn(res))
		}
		return 1
	}
	return 0
}

// unknownOutcome explains an order whose answer never came: the node may
// have applied it, and spread it, before the connection broke.
func unknownOutcome(w io.Writer, verb, name, admin string, err error) {
	fmt.Fprintf(w, "tsubame %s: %s: no answer from the node at %s (%v).\n"+
		"The %s may have reached some or all of the chosen nodes before it was lost; this cannot tell which.\n"+
		"Run `tsubame components --admin OTHER-NODE` to see what each node holds, and repeat the %s\n"+
		"through a live node if needed (repeating it is safe).\n", verb, name, admin, err, verb, verb)
}

// printResults writes one row per node and a summary line.
func printResults(w io.Writer, verb string, res adminapi.InstallResponse) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tRESULT\tVERSION\tMS\tFETCHED FROM")
	ok := 0
	for _, r := range res.Results {
		result := verb
		if r.Absent {
			result = "not held (nothing to do)"
		}
		if !r.OK {
			result = "FAILED: " + r.Error
		} else {
			ok++
		}
		version := "-"
		if len(r.Hash) >= 12 {
			version = r.Hash[:12]
		}
		from := r.FetchedFrom
		if from == "" {
			from = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", r.Node, result, version, r.Millis, from)
	}
	_ = tw.Flush()
	size := ""
	if res.Size > 0 {
		size = fmt.Sprintf(" (%s, %s)", res.Hash[:12], byteSize(int64(res.Size)))
	}
	fmt.Fprintf(w, "%s %s%s on %d of %d nodes\n", verb, res.Name, size, ok, len(res.Results))
}

// failedOn says on how many nodes an install or removal failed; the table
// above it has each node's error.
func failedOn(res adminapi.InstallResponse) string {
	n := 0
	for _, r := range res.Results {
		if !r.OK {
			n++
		}
	}
	return fmt.Sprintf("failed on %d of %d nodes (see above)", n, len(res.Results))
}

// byteSize formats n bytes for people.
func byteSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// progress reports an upload's progress on stderr: for a module of 1 MiB or
// more, a line every 10% (or one updated line on a terminal).
type progress struct {
	// mu: net/http may still read the body after the answer came (a node
	// that refuses early), while the command prints its result.
	mu         sync.Mutex
	over       bool
	r          io.Reader
	size, sent int64
	name       string
	w          io.Writer
	tty        bool
	last       int64 // the tenth last reported
	start      time.Time
}

// progressMin is the smallest upload that reports progress.
const progressMin = 1 << 20

func newProgress(r io.Reader, size int64, name string, w io.Writer) *progress {
	p := &progress{r: r, size: size, name: name, w: w, last: -1, start: time.Now()}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *progress) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sent += int64(n)
	if p.size >= progressMin && !p.over {
		if tenth := p.sent * 10 / p.size; tenth != p.last {
			p.last = tenth
			p.report()
		}
	}
	return n, err
}

func (p *progress) report() {
	line := fmt.Sprintf("uploading %s: %s of %s (%d%%)", p.name, byteSize(p.sent), byteSize(p.size), p.sent*100/max(p.size, 1))
	if p.tty {
		fmt.Fprint(p.w, "\r"+line)
	} else {
		fmt.Fprintln(p.w, line)
	}
}

// done ends the progress display once the upload is answered.
func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.over = true
	if p.size < progressMin || p.sent == 0 {
		return
	}
	if p.tty {
		fmt.Fprintln(p.w)
	}
	fmt.Fprintf(p.w, "sent %s in %s\n", byteSize(p.sent), time.Since(p.start).Round(time.Millisecond))
}
