package wasmhost

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/tsubame-rt/tsubame/lp"
)

// logBuf collects log output from concurrent steps.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func testConfig(logs *logBuf) Config {
	var w = &logBuf{}
	if logs != nil {
		w = logs
	}
	return NewConfig().WithLogger(slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})))
}

func newRuntime(t testing.TB, c Config) *Runtime {
	t.Helper()
	rt, err := New(context.Background(), c)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := rt.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return rt
}

func wasmFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", name+".wasm"))
	if err != nil {
		t.Fatalf("read module: %v", err)
	}
	return b
}

func load(t testing.TB, rt *Runtime, name string) *Module {
	t.Helper()
	m, err := rt.Load(context.Background(), wasmFile(t, name))
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	return m
}

func newLP(target, kind, input string) *lp.Process {
	return lp.New("test", target, kind, []byte(input))
}
