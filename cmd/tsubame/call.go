package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

func init() {
	register(command{"call", "invoke any installed component through a gateway's admin API", runCall})
}

func runCall(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tsubame call", flag.ContinueOnError)
	fs.SetOutput(stderr)
	af := addAdminFlags(fs, "gateway", "127.0.0.1:7481", "the gateway's", 30*time.Second)
	verbose := fs.Bool("v", false, "print the nodes each step ran on (Tsubame-Trace) to stderr")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: tsubame call --gateway ADDR --token-file F [--ca CA.pem] [-v] COMPONENT KIND [INPUT | -]\n\n"+
			"Runs COMPONENT's request KIND with INPUT (\"-\" reads it from stdin; none: empty) as an LP\n"+
			"through the gateway, with no route needed, and prints the reply. An admin-only path:\n"+
			"the gateway serves it only with [admin] on, and only to the token.")
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) < 2 || len(pos) > 3 {
		fs.Usage()
		return 2
	}
	var input io.Reader = strings.NewReader("")
	size := int64(0)
	if len(pos) == 3 {
		if pos[2] == "-" {
			b, err := io.ReadAll(io.LimitReader(os.Stdin, 1<<20+1))
			if err != nil {
				fmt.Fprintln(stderr, "tsubame call: stdin:", err)
				return 1
			}
			input, size = strings.NewReader(string(b)), int64(len(b))
		} else {
			input, size = strings.NewReader(pos[2]), int64(len(pos[2]))
		}
	}
	c, err := af.client(true)
	if err != nil {
		fmt.Fprintln(stderr, "tsubame call:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *af.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost,
		c.base+"/v1/call/"+url.PathEscape(pos[0])+"/"+url.PathEscape(pos[1]), input)
	if err != nil {
		fmt.Fprintln(stderr, "tsubame call:", err)
		return 2
	}
	req.ContentLength = size
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		fmt.Fprintln(stderr, "tsubame call:", err)
		return 1
	}
	defer resp.Body.Close()
	if *verbose {
		fmt.Fprintf(stderr, "trace: %s\n", resp.Header.Get("Tsubame-Trace"))
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		msg := strings.TrimSpace(string(b))
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		if code := resp.Header.Get("Tsubame-Code"); code != "" {
			msg += " (code " + code + ")"
		}
		fmt.Fprintf(stderr, "tsubame call: %s %s: %s: %s\n", pos[0], pos[1], resp.Status, msg)
		return 1
	}
	if _, err := io.Copy(stdout, resp.Body); err != nil && !errors.Is(err, io.EOF) {
		fmt.Fprintln(stderr, "tsubame call:", err)
		return 1
	}
	return 0
}
