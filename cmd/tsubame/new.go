package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/tsubame-rt/tsubame/internal/scaffold"
)

func init() {
	register(command{"new", "scaffold a component folder in Go, C, Rust, AssemblyScript or WAT", runNew})
}

func runNew(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tsubame new", flag.ContinueOnError)
	fs.SetOutput(stderr)
	lang := fs.String("lang", "go", "the component's `language`: "+strings.Join(scaffold.Languages, ", "))
	dir := fs.String("dir", "", "the `folder` to create (default: ./NAME); it must not exist or be empty")
	sdk := fs.String("sdk", "", "Go only: the Tsubame checkout to build against (default: the one holding the working directory or this executable)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: tsubame new [--lang go|c|rust|as|wat] [--dir D] NAME\n\n"+
			"Writes a component folder: a \"hello\" handler, the SDK, and a Makefile.\n"+
			"`make` builds NAME.wasm; `make try` runs it with `tsubame exec`. See docs/components.md.")
		fs.PrintDefaults()
	}
	// Flags may follow the name: tsubame new NAME --lang c.
	var name string
	rest := args
	for {
		if err := fs.Parse(rest); err != nil {
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		if name != "" {
			fs.Usage()
			return 2
		}
		name, rest = fs.Arg(0), fs.Args()[1:]
	}
	if name == "" {
		fs.Usage()
		return 2
	}
	if *dir == "" {
		*dir = name
	}
	o := scaffold.Options{Lang: *lang, Name: name, Dir: *dir, SDK: *sdk}
	if o.Lang == "go" && o.SDK == "" {
		from := []string{"."}
		if exe, err := os.Executable(); err == nil {
			from = append(from, filepath.Dir(exe))
		}
		root, err := scaffold.FindSDK(from...)
		if err != nil {
			fmt.Fprintf(stderr, "tsubame new: %v; give the checkout with --sdk\n", err)
			return 1
		}
		o.SDK = root
	}
	files, err := scaffold.Write(o)
	if err != nil {
		fmt.Fprintln(stderr, "tsubame new:", err)
		return 1
	}
	fmt.Fprintf(stdout, "created %s (%s component %s):\n", o.Dir, o.Lang, name)
	for _, f := range files {
		fmt.Fprintln(stdout, "  "+f)
	}
	fmt.Fprintf(stdout, "next: cd %s && make try\n", o.Dir)
	return 0
}
