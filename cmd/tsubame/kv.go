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
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tsubame-rt/tsubame/abi"
	"github.com/tsubame-rt/tsubame/internal/adminapi"
)

func init() {
	register(command{"kv", "read and write a KV bucket through a node: get, set, del, ls", runKV})
}

func runKV(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tsubame kv", flag.ContinueOnError)
	fs.SetOutput(stderr)
	af := addAdminFlags(fs, "admin", "127.0.0.1:7480", "a node's", 10*time.Second)
	bucket := fs.String("bucket", "", "the `bucket` (a component's private bucket has the component's name)")
	ttl := fs.Duration("ttl", 0, "set: the value expires after this long (0: never)")
	after := fs.String("after", "", "ls: list keys greater than this one")
	limit := fs.Int("limit", adminapi.DefaultKVList, "ls: list at most this many keys")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: tsubame kv get|set|del|ls --bucket B --admin ADDR --token-file F [--ca CA.pem] [KEY [VALUE|-]]\n\n"+
			"  get KEY          writes the value to stdout (exit 1 if there is none)\n"+
			"  set KEY VALUE    stores VALUE (\"-\": stdin), for --ttl if set\n"+
			"  del KEY          deletes the key (exit 1 if there was none)\n"+
			"  ls               lists keys, one a line (Go-quoted when not printable text)\n\n"+
			"An operator's access through the node's admin API: no grant is checked and the\n"+
			"once-journal is not used.")
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) == 0 || *bucket == "" {
		fs.Usage()
		return 2
	}
	if !abi.ValidName(*bucket) {
		fmt.Fprintf(stderr, "tsubame kv: bucket %q is not a name (1 to %d letters, digits, _ - ., starting with a letter)\n", *bucket, abi.MaxName)
		return 2
	}
	op, rest := pos[0], pos[1:]
	req := adminapi.KVRequest{Op: op}
	want := map[string]int{"get": 1, "set": 2, "del": 1, "ls": 0}
	n, known := want[op]
	if !known || len(rest) != n {
		fs.Usage()
		return 2
	}
	if n > 0 {
		req.Key = []byte(rest[0])
	}
	switch op {
	case "set":
		req.Value = []byte(rest[1])
		if rest[1] == "-" {
			if req.Value, err = io.ReadAll(io.LimitReader(stdin, abi.MaxKVValue+1)); err != nil {
				fmt.Fprintln(stderr, "tsubame kv: read the value:", err)
				return 1
			}
		}
		req.TTLMillis = ttl.Milliseconds()
	case "ls":
		req.After, req.Limit = []byte(*after), *limit
	}
	c, err := af.client(true)
	if err != nil {
		fmt.Fprintln(stderr, "tsubame kv:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *af.timeout)
	defer cancel()
	body, _ := json.Marshal(req)
	var res adminapi.KVResponse
	if err := c.do(ctx, http.MethodPost, "/v1/kv/"+url.PathEscape(*bucket), bytes.NewReader(body), int64(len(body)), "application/json", &res); err != nil {
		fmt.Fprintln(stderr, "tsubame kv:", err)
		return 1
	}
	switch op {
	case "get":
		if !res.Found {
			fmt.Fprintf(stderr, "tsubame kv: %s: no key %s\n", *bucket, printable(req.Key))
			return 1
		}
		_, _ = stdout.Write(res.Value)
	case "del":
		if !res.Found {
			fmt.Fprintf(stderr, "tsubame kv: %s: no key %s\n", *bucket, printable(req.Key))
			return 1
		}
	case "ls":
		for _, k := range res.Keys {
			fmt.Fprintln(stdout, printable(k))
		}
	}
	return 0
}

// printable shows a key as itself when it is printable text, else quoted.
func printable(k []byte) string {
	if utf8.Valid(k) && len(k) > 0 && bytes.IndexFunc(k, func(r rune) bool { return !unicode.IsPrint(r) }) < 0 {
		return string(k)
	}
	return strconv.Quote(string(k))
}
