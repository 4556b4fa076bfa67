// Package scaffold writes a new component folder for `tsubame new`: a
// handler skeleton (kind "hello"), the language's SDK and a Makefile whose
// default target builds NAME.wasm and whose `try` target runs it once with
// `tsubame exec`. The folder builds and runs with no edits.
//
// The C, Rust and AssemblyScript SDKs are vendored into the folder (they are
// one file each and embedded in the binary), so the folder stands alone. The
// Go SDK is a package of the Tsubame module, which is not published: the
// folder's go.mod replaces the module with a local checkout.
//
// scaffold only writes files. It never builds, runs or downloads anything.
package scaffold

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"text/template"

	"github.com/tsubame-rt/tsubame/abi"
	asSDK "github.com/tsubame-rt/tsubame/abi/as"
	cSDK "github.com/tsubame-rt/tsubame/abi/c"
	rustSDK "github.com/tsubame-rt/tsubame/abi/rust"
)

//go:embed templates
var templates embed.FS

// Languages are the values Options.Lang accepts.
var Languages = []string{"go", "c", "rust", "as", "wat"}

// Kind is the request kind the skeleton serves, and TryInput the input
// `make try` sends it.
const (
	Kind     = "hello"
	TryInput = "world"
)

// Module is the Go module path of Tsubame, which a Go component's go.mod
// replaces with a checkout.
const Module = "github.com/tsubame-rt/tsubame"

// Options says what to write.
type Options struct {
	// Lang is one of Languages.
	Lang string
	// Name is the component's name (abi.ValidName): the module is NAME.wasm.
	Name string
	// Dir is the folder to create. It must not exist, or be empty.
	Dir string
	// SDK is the root of a Tsubame checkout; needed for Go only. FindSDK
	// finds one.
	SDK string
}

// Write creates the folder and returns the paths it wrote, relative to Dir.
func Write(o Options) ([]string, error) {
	if !abi.ValidName(o.Name) {
		return nil, fmt.Errorf("invalid component name %q: use 1 to %d ASCII letters, digits, '_', '-' or '.', starting with a letter",
			o.Name, abi.MaxName)
	}
	files, err := render(o)
	if err != nil {
		return nil, err
	}
	if err := emptyDir(o.Dir); err != nil {
		return nil, err
	}
	var wrote []string
	for _, f := range files {
		p := filepath.Join(o.Dir, f.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return wrote, err
		}
		if err := os.WriteFile(p, f.data, 0o644); err != nil {
			return wrote, err
		}
		wrote = append(wrote, f.path)
	}
	return wrote, nil
}

// emptyDir makes sure dir exists and holds nothing, so a scaffold never
// overwrites anyone's files.
func emptyDir(dir string) error {
	ents, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return os.MkdirAll(dir, 0o755)
	case err != nil:
		return err
	case len(ents) > 0:
		return fmt.Errorf("%s is not empty: choose a new folder", dir)
	}
	return nil
}

type file struct {
	path string
	data []byte
}

// vars are what the templates see.
type vars struct {
	Name, Crate, GoVersion, SDK, Try string
}

func render(o Options) ([]file, error) {
	v := vars{
		Name:  o.Name,
		Crate: strings.NewReplacer("-", "_", ".", "_").Replace(o.Name),
		Try:   fmt.Sprintf("$(TSUBAME) exec -m %s.wasm %s %s %s", o.Name, o.Name, Kind, TryInput),
	}
	var extra []file
	switch o.Lang {
	case "go":
		if o.SDK == "" {
			return nil, errors.New("a Go component builds against a Tsubame checkout: give its path (--sdk)")
		}
		goVersion, err := checkoutGoVersion(o.SDK)
		if err != nil {
			return nil, err
		}
		v.SDK, v.GoVersion = o.SDK, goVersion
	case "c":
		extra = append(extra, file{"tsubame.h", cSDK.Header})
	case "rust":
		extra = append(extra, file{"tsubame/src/lib.rs", rustSDK.Lib}, file{"tsubame/Cargo.toml", rustSDK.Manifest})
	case "as":
		pkg, lock, err := asPackage(o.Name)
		if err != nil {
			return nil, err
		}
		extra = append(extra, file{"lib/tsubame.ts", asSDK.Lib}, file{"package.json", pkg}, file{"package-lock.json", lock})
	case "wat":
	default:
		return nil, fmt.Errorf("unknown language %q (want one of %s)", o.Lang, strings.Join(Languages, ", "))
	}
	root := "templates/" + o.Lang
	var out []file
	err := fs.WalkDir(templates, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		t, err := template.ParseFS(templates, p)
		if err != nil {
			return err
		}
		var b bytes.Buffer
		if err := t.Execute(&b, v); err != nil {
			return fmt.Errorf("template %s: %w", p, err)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(p, root+"/"), ".tmpl")
		// component.EXT is the handler: it takes the component's name.
		if base := filepath.Base(name); strings.HasPrefix(base, "component.") {
			name = filepath.Join(filepath.Dir(name), o.Name+strings.TrimPrefix(base, "component"))
		}
		out = append(out, file{name, b.Bytes()})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return append(out, extra...), nil
}

// checkoutGoVersion returns the go directive of the checkout's go.mod: the
// component's go.mod needs at least that version.
func checkoutGoVersion(sdk string) (string, error) {
	b, err := os.ReadFile(filepath.Join(sdk, "go.mod"))
	if err != nil {
		return "", fmt.Errorf("tsubame checkout %s: %w", sdk, err)
	}
	if modulePath(b) != Module {
		return "", fmt.Errorf("%s/go.mod is not module %s", sdk, Module)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "go "); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return strings.TrimPrefix(runtime.Version(), "go"), nil
}

func modulePath(gomod []byte) string {
	for _, line := range strings.Split(string(gomod), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "module "); ok {
			return strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	return ""
}

// FindSDK returns the root of the Tsubame checkout that holds one of the
// given paths (typically the working directory and the tsubame executable):
// the first folder, walking up, whose go.mod declares Module.
func FindSDK(from ...string) (string, error) {
	for _, start := range from {
		dir, err := filepath.Abs(start)
		if err != nil {
			continue
		}
		for {
			if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && modulePath(b) == Module {
				return dir, nil
			}
			up := filepath.Dir(dir)
			if up == dir {
				break
			}
			dir = up
		}
	}
	return "", fmt.Errorf("no Tsubame checkout (a go.mod of module %s) above %s", Module, strings.Join(from, " or "))
}

// asPackage returns the component's package.json and package-lock.json: the
// SDK's, with the component's name, so `npm ci` installs exactly the pinned
// compiler.
func asPackage(name string) (pkg, lock []byte, err error) {
	var p, l map[string]any
	if err := json.Unmarshal(asSDK.PackageJSON, &p); err != nil {
		return nil, nil, fmt.Errorf("embedded package.json: %w", err)
	}
	if err := json.Unmarshal(asSDK.PackageLock, &l); err != nil {
		return nil, nil, fmt.Errorf("embedded package-lock.json: %w", err)
	}
	pkgName := strings.ToLower(name)
	p["name"] = pkgName
	p["description"] = name + ": a Tsubame component in AssemblyScript"
	delete(p, "exports")
	l["name"] = pkgName
	if pkgs, ok := l["packages"].(map[string]any); ok {
		if root, ok := pkgs[""].(map[string]any); ok {
			root["name"] = pkgName
		}
	}
	if pkg, err = json.MarshalIndent(p, "", "  "); err != nil {
		return nil, nil, err
	}
	if lock, err = json.MarshalIndent(l, "", "  "); err != nil {
		return nil, nil, err
	}
	return append(pkg, '\n'), append(lock, '\n'), nil
}
