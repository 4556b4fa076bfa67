package buildcheck

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"
)

// exitMissingToolchain is the status a script exits with when its
// toolchain is not installed.
const exitMissingToolchain = 77

// scriptTimeout bounds one language's build; a cold Rust or Go cache is the
// slow case.
const scriptTimeout = 10 * time.Minute

func TestCommittedModulesRebuild(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	scripts, err := filepath.Glob(filepath.Join(root, "scripts", "components", "*.sh"))
	if err != nil || len(scripts) == 0 {
		t.Fatalf("no scripts/components/*.sh (err %v)", err)
	}
	sort.Strings(scripts)
	committed, err := filepath.Glob(filepath.Join(root, "testdata", "*.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	require := os.Getenv("TSUBAME_REQUIRE_TOOLCHAINS") == "1"

	builtBy := map[string]string{} // module file name -> language
	complete := true               // every script built its modules
	for _, script := range scripts {
		lang := strings.TrimSuffix(filepath.Base(script), ".sh")
		built := false
		t.Run(lang, func(t *testing.T) {
			out := t.TempDir()
			log, err := runScript(t.Context(), root, script, out)
			var exit *exec.ExitError
			if errors.As(err, &exit) && exit.ExitCode() == exitMissingToolchain {
				msg := fmt.Sprintf("%s toolchain missing, committed %s modules not checked:\n%s", lang, lang, log)
				if require || lang == "go" {
					t.Fatal(msg)
				}
				t.Skip(msg)
			}
			if err != nil {
				t.Fatalf("%s: %v\n%s", filepath.Base(script), err, log)
			}
			modules, err := filepath.Glob(filepath.Join(out, "*.wasm"))
			if err != nil || len(modules) == 0 {
				t.Fatalf("%s built no module into OUT (err %v)\n%s", filepath.Base(script), err, log)
			}
			built = true
			for _, b := range modules {
				name := filepath.Base(b)
				if other, dup := builtBy[name]; dup {
					t.Errorf("%s is built by both %s.sh and %s.sh", name, other, lang)
				}
				builtBy[name] = lang
				compare(t, b, filepath.Join(root, "testdata", name))
			}
		})
		complete = complete && built
	}
	if !complete {
		t.Log("not every script built its modules: skipping the check for committed modules without a source")
		return
	}
	for _, c := range committed {
		if _, ok := builtBy[filepath.Base(c)]; !ok {
			t.Errorf("testdata/%s is committed but no scripts/components/*.sh builds it: add its source or delete it", filepath.Base(c))
		}
	}
}

func runScript(ctx context.Context, root, script, out string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, scriptTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", script)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "OUT="+out)
	log, err := cmd.CombinedOutput()
	return string(log), err
}

func compare(t *testing.T, rebuilt, committed string) {
	t.Helper()
	name := filepath.Base(committed)
	want, err := os.ReadFile(committed)
	if errors.Is(err, os.ErrNotExist) {
		t.Errorf("testdata/%s is built from source but not committed: run `make components` and commit it", name)
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(rebuilt)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("testdata/%s differs from a rebuild (%d bytes, sha256 %x; rebuilt %d bytes, sha256 %x): "+
			"run `make components` and commit it, or check the toolchain version (this is %s)",
			name, len(want), sha256.Sum256(want), len(got), sha256.Sum256(got), runtime.Version())
	}
}
