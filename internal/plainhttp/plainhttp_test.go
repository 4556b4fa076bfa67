package plainhttp

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tsubame-rt/tsubame/node/engine"
	"github.com/tsubame-rt/tsubame/wasmhost"
)

func TestHandler(t *testing.T) {
	ctx := context.Background()
	rt, err := wasmhost.New(ctx, wasmhost.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close(ctx) })
	eng := engine.New(rt, engine.Options{Node: "plain"})
	for _, name := range []string{"formula-cache", "formula-logic"} {
		wasm, err := os.ReadFile("../../testdata/" + name + ".wasm")
		if err != nil {
			t.Fatal(err)
		}
		mod, err := rt.Load(ctx, wasm)
		if err != nil {
			t.Fatal(err)
		}
		eng.Install(name, mod)
	}
	srv := httptest.NewServer(Handler(eng, "formula-cache", "render", 10*time.Second))
	t.Cleanup(srv.Close)
	post := func(body string) (int, string) {
		res, err := http.Post(srv.URL, "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, body := post("1+2"); code != 200 || !strings.HasPrefix(body, "P5") {
		t.Fatalf("1+2: %d %.40q", code, body)
	}
	if code, body := post("1/0"); code != 400 || !strings.Contains(body, "division by zero") {
		t.Fatalf("1/0: %d %q", code, body)
	}
	if code, _ := post(strings.Repeat("1", 2<<20)); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized body: %d", code)
	}
}
