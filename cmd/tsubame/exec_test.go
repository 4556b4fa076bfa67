package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tsubame-rt/tsubame/internal/testutil"
)

func td(name string) string { return filepath.Join("..", "..", "testdata", name+".wasm") }

// execRun runs `tsubame exec args...` in-process with stdin in.
func execRun(t *testing.T, in string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	old := stdin
	stdin = strings.NewReader(in)
	defer func() { stdin = old }()
	var o, e bytes.Buffer
	code = run(append([]string{"exec"}, args...), &o, &e)
	return code, o.String(), e.String()
}

// TestExecHelloWorld is the done criterion: the Go components hello and
// greet answer `hello say world` with exactly "Hello, world!".
func TestExecHelloWorld(t *testing.T) {
	for _, kind := range []string{"say", "say-seq"} {
		code, out, errs := execRun(t, "", "-m", td("hello"), "-m", "greet="+td("greet"), "hello", kind, "world")
		if code != 0 || out != "Hello, world!" || errs != "" {
			t.Fatalf("%s: exit %d, stdout %q, stderr %q", kind, code, out, errs)
		}
	}
}

// TestExecBinary runs the built binary ($TSUBAME_BIN, or one built here).
func TestExecBinary(t *testing.T) {
	bin := testutil.Binary(t)
	cmd := exec.Command(bin, "exec", "-m", td("hello"), "-m", td("greet"), "hello", "say", "world")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || string(out) != "Hello, world!" {
		t.Fatalf("%v: stdout %q stderr %q", err, out, stderr.String())
	}
}

func TestExecStdinAndChain(t *testing.T) {
	// relay replies with an input that has no '/'.
	code, out, errs := execRun(t, "from stdin", "-m", "a="+td("relay"), "-m", "b="+td("relay"), "-m", td("echo"), "a", "go", "-")
	if code != 0 || out != "from stdin" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
	code, out, errs = execRun(t, "b/echo/deep", "-m", "a="+td("relay"), "-m", "b="+td("relay"), "-m", td("echo"), "a", "go")
	if code != 0 || out != "deep" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
}

func TestExecFailures(t *testing.T) {
	cases := []struct {
		name   string
		args   []string
		stderr string // prefix
	}{
		{"component's own code", []string{"-m", td("greet"), "greet", "greet", ""},
			"tsubame: greet/greet failed: code 400 (component's own): greet: empty name\n"},
		{"trap", []string{"-m", td("trap"), "trap", "k", "x"},
			"tsubame: trap/k failed: code 1 (trap): component trap: trap: wasm error: unreachable"},
		{"not held", []string{"-m", td("hello"), "hello", "say", "world"},
			"tsubame: hello/say failed: code 4 (no component): "},
		{"timeout", []string{"-timeout", "200ms", "-m", td("loop"), "loop", "k", "x"},
			"tsubame: loop/k failed: code 2 (timeout): "},
		{"missing file", []string{"-m", "x=nosuch.wasm", "x", "k", "x"}, "tsubame exec: open nosuch.wasm"},
		{"refused module", []string{"-m", td("badimport"), "badimport", "k", "x"}, "tsubame exec: load "},
	}
	for _, c := range cases {
		code, out, errs := execRun(t, "", c.args...)
		if code != 1 || out != "" || !strings.HasPrefix(errs, c.stderr) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit 1 and stderr starting %q", c.name, code, out, errs, c.stderr)
		}
	}
}

func TestExecUsage(t *testing.T) {
	for _, args := range [][]string{
		{}, {"hello"}, {"a", "b", "c", "d"}, {"-nosuchflag", "a", "b"}, {"-m", "9bad=x.wasm", "a", "b"},
		{"bad name", "k"}, {"-timeout", "0s", "a", "b"},
	} {
		if code, out, _ := execRun(t, "", args...); code != 2 || out != "" {
			t.Errorf("%q: exit %d, stdout %q; want exit 2", args, code, out)
		}
	}
}

func TestExecVerbose(t *testing.T) {
	code, out, errs := execRun(t, "", "-v", "-m", td("hello"), "-m", td("greet"), "hello", "say", "world")
	if code != 0 || out != "Hello, world!" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
	for _, want := range []string{"step 1: entry 0 hello/say call ", "step 2: entry 1 greet/greet reply ", "step 3: entry 0 hello/say reply "} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
}
