package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/tsubame-rt/tsubame/abi"
	"github.com/tsubame-rt/tsubame/internal/plainhttp"
	"github.com/tsubame-rt/tsubame/lp"
	"github.com/tsubame-rt/tsubame/node/engine"
	"github.com/tsubame-rt/tsubame/node/kv"
	"github.com/tsubame-rt/tsubame/wasmhost"
)

func init() {
	register(command{"exec", "run one request through components in this process, no cluster", runExec})
}

// stdin is where exec reads INPUT "-"; tests replace it.
var stdin io.Reader = os.Stdin

// moduleFlags collects -m NAME=FILE.wasm (or -m FILE.wasm, named after the
// file).
type moduleFlags []struct{ name, file string }

func (m *moduleFlags) String() string { return "" }

func (m *moduleFlags) Set(v string) error {
	name, file, ok := strings.Cut(v, "=")
	if !ok {
		file = v
		name = strings.TrimSuffix(filepath.Base(v), ".wasm")
	}
	if !abi.ValidName(name) {
		return fmt.Errorf("component name %q: 1 to %d letters, digits, _ - ., starting with a letter", name, abi.MaxName)
	}
	if file == "" {
		return errors.New("empty module file")
	}
	*m = append(*m, struct{ name, file string }{name, file})
	return nil
}

// grantFlags collects -grant BUCKET=COMPONENT[,COMPONENT...] into the [kv]
// buckets a node's config would declare.
type grantFlags map[string]kv.BucketConfig

func (g grantFlags) String() string { return "" }

func (g grantFlags) Set(v string) error {
	bucket, comps, ok := strings.Cut(v, "=")
	if !ok || comps == "" {
		return fmt.Errorf("%q: want BUCKET=COMPONENT[,COMPONENT...]", v)
	}
	if !abi.ValidName(bucket) {
		return fmt.Errorf("bucket name %q: 1 to %d letters, digits, _ - ., starting with a letter", bucket, abi.MaxName)
	}
	b := g[bucket]
	for _, c := range strings.Split(comps, ",") {
		if !abi.ValidName(c) {
			return fmt.Errorf("component name %q in -grant %s", c, v)
		}
		b.Grant = append(b.Grant, c)
	}
	g[bucket] = b
	return nil
}

// execKV is the store of a `tsubame exec` run: the memory backend (gone
// when exec exits), or the Redis of -kv-redis.
func execKV(grants grantFlags, redisURL string) (*kv.Store, error) {
	c := kv.Config{Buckets: grants}
	if redisURL != "" {
		c.DefaultBackend = "redis"
		c.Backends = map[string]kv.BackendConfig{"redis": {Type: kv.Redis, URL: redisURL}}
	}
	return kv.New(c, kv.Options{Logger: slog.New(slog.DiscardHandler)})
}

func runExec(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tsubame exec", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var mods moduleFlags
	fs.Var(&mods, "m", "install component `NAME=FILE.wasm` (or FILE.wasm, named after the file); repeatable")
	verbose := fs.Bool("v", false, "print each step, and guest logs, to stderr")
	timeout := fs.Duration("timeout", 30*time.Second, "the request's deadline")
	grants := grantFlags{}
	fs.Var(grants, "grant", "grant KV bucket `BUCKET=COMPONENT[,COMPONENT...]`, as [kv.buckets] does; repeatable (every component has its private bucket anyway)")
	redisURL := fs.String("kv-redis", "", "keep every bucket in the Redis at `URL` (redis:// or rediss://) instead of in memory, which is gone when exec exits")
	httpAddr := fs.String("http", "", "serve TARGET KIND over plain HTTP on `address` instead (each request's body is an input) until SIGINT or SIGTERM")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: tsubame exec [-m NAME=FILE.wasm]... [-grant BUCKET=COMP,...]... [-kv-redis URL] [-v] [-timeout D] TARGET KIND [INPUT]\n\n"+
			"Runs one request (an LP asking component TARGET for KIND with INPUT) to completion\n"+
			"in this process and writes the reply to stdout. INPUT \"-\" or absent reads stdin.\n"+
			"With --http ADDR it serves every request that way instead: no cluster, no migration.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() < 2 || fs.NArg() > 3 || *timeout <= 0 {
		fs.Usage()
		return 2
	}
	target, kind := fs.Arg(0), fs.Arg(1)
	if !abi.ValidName(target) || !abi.ValidName(kind) {
		fmt.Fprintf(stderr, "tsubame exec: %q and %q must be names: 1 to %d letters, digits, _ - ., starting with a letter\n", target, kind, abi.MaxName)
		return 2
	}
	var input []byte
	if *httpAddr == "" {
		var err error
		if input, err = execInput(fs.Args()[2:]); err != nil {
			fmt.Fprintln(stderr, "tsubame exec:", err)
			return 1
		}
	}

	level := slog.LevelError
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	ctx := context.Background()
	store, err := execKV(grants, *redisURL)
	if err != nil {
		fmt.Fprintln(stderr, "tsubame exec:", err)
		return 1
	}
	defer store.Close()
	rt, err := wasmhost.New(ctx, wasmhost.NewConfig().WithLogger(log).WithKV(store))
	if err != nil {
		fmt.Fprintln(stderr, "tsubame exec:", err)
		return 1
	}
	defer rt.Close(ctx)
	// Keep the whole trace: -v prints every step.
	eng := engine.New(rt, engine.Options{Node: "exec", Logger: log, Limits: lp.Limits{MaxTrace: 1 << 16}})
	if err := installModules(ctx, rt, eng, mods); err != nil {
		fmt.Fprintln(stderr, "tsubame exec:", err)
		return 1
	}

	if *httpAddr != "" {
		return execServe(*httpAddr, plainhttp.Handler(eng, target, kind, *timeout), target+"/"+kind, stdout, stderr)
	}
	p := lp.New("exec", target, kind, input)
	p.Deadline = time.Now().Add(*timeout).UnixNano()
	runErr := eng.Run(ctx, p)
	if *verbose {
		printTrace(stderr, p)
	}
	if runErr != nil {
		fmt.Fprintf(stderr, "tsubame: %s/%s: %v\n", target, kind, runErr)
		return 1
	}
	root := p.Root()
	if root.State == lp.StateFailed {
		fmt.Fprintf(stderr, "tsubame: %s/%s failed: code %d (%s): %s\n", target, kind, root.ErrCode, execCodeName(root.ErrCode), root.ErrMsg)
		return 1
	}
	if _, err := stdout.Write(root.Output); err != nil {
		fmt.Fprintln(stderr, "tsubame exec:", err)
		return 1
	}
	return 0
}

// installModules loads each -m module into rt and installs it in eng.
func installModules(ctx context.Context, rt *wasmhost.Runtime, eng *engine.Engine, mods moduleFlags) error {
	for _, m := range mods {
		wasm, err := os.ReadFile(m.file)
		if err != nil {
			return err
		}
		mod, err := rt.Load(ctx, wasm)
		if err != nil {
			return fmt.Errorf("load %s: %w", m.file, err)
		}
		eng.Install(m.name, mod)
	}
	return nil
}

// execServe serves h on addr until SIGINT or SIGTERM; the first line on
// stdout says where (a script or the evaluation harness reads it).
func execServe(addr string, h http.Handler, what string, stdout, stderr io.Writer) int {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(stderr, "tsubame exec:", err)
		return 1
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "tsubame exec: serving %s on http://%s\n", what, ln.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); srv.Close() }()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(stderr, "tsubame exec:", err)
		return 1
	}
	return 0
}

// execInput is the request's input: the argument, or stdin for "-" or none.
func execInput(args []string) ([]byte, error) {
	if len(args) == 1 && args[0] != "-" {
		return []byte(args[0]), nil
	}
	max := lp.DefaultLimits.MaxBytes
	b, err := io.ReadAll(io.LimitReader(stdin, int64(max)+1))
	if err != nil {
		return nil, fmt.Errorf("read input: %w", err)
	}
	if len(b) > max {
		return nil, fmt.Errorf("input over the limit of %d bytes", max)
	}
	return b, nil
}

func execCodeName(code uint32) string {
	if n := abi.CodeName(code); n != "" {
		return n
	}
	if code >= abi.CodeUser {
		return "component's own"
	}
	return "reserved"
}

func printTrace(w io.Writer, p *lp.Process) {
	var b bytes.Buffer
	if p.TraceDropped > 0 {
		fmt.Fprintf(&b, "(%d earlier steps not kept)\n", p.TraceDropped)
	}
	for i, s := range p.Trace {
		en := p.Entries[s.Entry]
		fmt.Fprintf(&b, "step %d: entry %d %s/%s %s %v\n", i+1, s.Entry, en.Target, en.Kind, s.Outcome,
			time.Duration(s.Micros)*time.Microsecond)
	}
	_, _ = w.Write(b.Bytes())
}
