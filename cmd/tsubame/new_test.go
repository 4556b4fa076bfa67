package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tsubame-rt/tsubame/internal/testutil"

	"github.com/tsubame-rt/tsubame/internal/scaffold"
)

// toolchain reports why lang's scaffold cannot be built here, or "".
func toolchain(lang, root string) string {
	need := map[string][]string{
		"go":   {"go", "make"},
		"c":    {"clang-14", "make"},
		"rust": {"/usr/bin/rustc", "make"},
		"as":   {"node", "make"},
		"wat":  {"wat2wasm", "make"},
	}[lang]
	for _, n := range need {
		if _, err := exec.LookPath(n); err != nil {
			return n + " not found"
		}
	}
	switch lang {
	case "rust":
		out, err := exec.Command("/usr/bin/rustc", "--print", "sysroot").Output()
		if err != nil {
			return "rustc --print sysroot: " + err.Error()
		}
		if _, err := os.Stat(filepath.Join(strings.TrimSpace(string(out)), "lib", "rustlib", "wasm32-unknown-unknown")); err != nil {
			return "rustc has no wasm32-unknown-unknown std (libstd-rust-dev-wasm32)"
		}
	case "as":
		if _, err := os.Stat(filepath.Join(root, "abi", "as", "node_modules", ".bin", "asc")); err != nil {
			return "abi/as/node_modules/.bin/asc missing (make toolchains)"
		}
	}
	return ""
}

// Every language's scaffold builds and answers under `tsubame exec` with
// no edits: `tsubame new`, then `make try` with the built binary.
func TestNewScaffoldsBuildAndRun(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	bin := testutil.Binary(t)
	require := os.Getenv("TSUBAME_REQUIRE_TOOLCHAINS") == "1"
	for _, lang := range scaffold.Languages {
		t.Run(lang, func(t *testing.T) {
			if why := toolchain(lang, root); why != "" {
				if require {
					t.Fatalf("%s toolchain: %s (TSUBAME_REQUIRE_TOOLCHAINS=1)", lang, why)
				}
				t.Skipf("%s toolchain: %s; run `make toolchains` to test this scaffold", lang, why)
			}
			name := "hello_" + lang
			dir := filepath.Join(t.TempDir(), name)
			var stdout, stderr bytes.Buffer
			if code := run([]string{"new", "--lang", lang, "--dir", dir, "--sdk", root, name}, &stdout, &stderr); code != 0 {
				t.Fatalf("tsubame new: exit %d: %s", code, stderr.String())
			}
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
			defer cancel()
			// The AssemblyScript compiler comes from the checkout's pinned
			// install, not from the network (the scaffold's own default is npm ci).
			cmd := exec.CommandContext(ctx, "make", "-s", "try", "TSUBAME="+bin, "RUSTC=/usr/bin/rustc",
				"ASC="+filepath.Join(root, "abi", "as", "node_modules", ".bin", "asc"))
			cmd.Dir = dir
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("make try: %v\nstdout %q\nstderr %s", err, out, stderr.String())
			}
			if !bytes.HasSuffix(out, []byte("Hello, world")) {
				t.Fatalf("make try printed %q, want it to end with the reply %q", out, "Hello, world")
			}
		})
	}
}

func TestNewRefuses(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "keep"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"new", "--lang", "cobol", "--dir", filepath.Join(dir, "x"), "x"}, `unknown language "cobol"`},
		{[]string{"new", "--lang", "c", "--dir", filepath.Join(dir, "y"), "9lives"}, `invalid component name "9lives"`},
		{[]string{"new", "--lang", "c", "--dir", dir, "ok"}, "is not empty"},
		{[]string{"new", "--lang", "go", "--sdk", dir, "--dir", filepath.Join(dir, "z"), "z"}, "go.mod"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(c.args, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q, want exit 1 and %q", c.args, code, stderr.String(), c.want)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "keep")); err != nil || string(b) != "mine" {
		t.Fatalf("existing file touched: %q %v", b, err)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"new"}, &stdout, &stderr); code != 2 {
		t.Fatalf("no name: exit %d, want 2", code)
	}
}
