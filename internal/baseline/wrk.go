package baseline

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/tsubame-rt/tsubame/internal/cputime"
)

// WrkResult is what one wrk run measured.
type WrkResult struct {
	Requests int
	Rate     float64 // requests per second
	P50, P99 time.Duration
	Errors   int           // non-2xx answers and socket errors
	CPU      time.Duration // wrk's own CPU; 0 where unreadable
}

// Wrk loads url with wrk (two threads, conns connections, for d), the
// client the figures use: lighter than a Go client, so more of the
// machine is left to the servers. wrk does not check bodies.
func Wrk(ctx context.Context, url string, conns int, d time.Duration) (WrkResult, error) {
	path, err := exec.LookPath("wrk")
	if err != nil {
		return WrkResult{}, errors.New("wrk is not installed (scripts/install-bench-tools.sh installs it)")
	}
	secs := max(1, int(d.Round(time.Second)/time.Second))
	before, _ := cputime.Children()
	out, err := exec.CommandContext(ctx, path, "-t2", "-c"+strconv.Itoa(conns), "-d"+strconv.Itoa(secs)+"s", "--latency", url).Output()
	if err != nil {
		return WrkResult{}, fmt.Errorf("wrk: %w", err)
	}
	r, err := parseWrk(string(out))
	if after, ok := cputime.Children(); ok {
		r.CPU = after - before
	}
	return r, err
}

// parseWrk reads wrk --latency's report.
func parseWrk(out string) (WrkResult, error) {
	var r WrkResult
	var haveRate bool
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 2 && f[0] == "50%":
			r.P50, _ = time.ParseDuration(f[1])
		case len(f) == 2 && f[0] == "99%":
			r.P99, _ = time.ParseDuration(f[1])
		case len(f) == 2 && f[0] == "Requests/sec:":
			r.Rate, _ = strconv.ParseFloat(f[1], 64)
			haveRate = true
		case len(f) >= 4 && f[1] == "requests" && f[2] == "in":
			r.Requests, _ = strconv.Atoi(f[0])
		case len(f) == 5 && f[0] == "Non-2xx":
			n, _ := strconv.Atoi(f[4])
			r.Errors += n
		case len(f) >= 2 && f[0] == "Socket" && f[1] == "errors:":
			for _, x := range f[2:] {
				if n, err := strconv.Atoi(strings.TrimSuffix(x, ",")); err == nil {
					r.Errors += n
				}
			}
		}
	}
	if !haveRate {
		return r, fmt.Errorf("wrk: no Requests/sec in its report:\n%s", out)
	}
	return r, nil
}
