package nodegateway

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSplitKeepsLines(t *testing.T) {
	in := "name = \"n1\"\n[scheduler]\npolicy = \"p2c\"\n[gateway]\n[gateway.http]\nlisten = \"127.0.0.1:0\"\n[[gateway.route]] # the one route\nmethod = \"GET\"\n[limits]\nworkers = 2\n"
	n, g, found := Split([]byte(in))
	if !found {
		t.Fatal("no gateway section found")
	}
	nl, gl := strings.Split(string(n), "\n"), strings.Split(string(g), "\n")
	if len(nl) != len(gl) || len(nl) != strings.Count(in, "\n")+1 {
		t.Fatalf("line counts %d, %d; want %d", len(nl), len(gl), strings.Count(in, "\n")+1)
	}
	for i, want := range map[int]string{0: `name = "n1"`, 1: "[scheduler]", 8: "[limits]", 9: "workers = 2"} {
		if nl[i] != want || gl[i] != "" {
			t.Errorf("line %d: node %q gateway %q, want %q in the node's part only", i+1, nl[i], gl[i], want)
		}
	}
	for i, want := range map[int]string{3: "", 4: "[http]", 5: `listen = "127.0.0.1:0"`, 6: "[[route]]", 7: `method = "GET"`} {
		if gl[i] != want || nl[i] != "" {
			t.Errorf("line %d: gateway %q node %q, want %q in the gateway's part only", i+1, gl[i], nl[i], want)
		}
	}
	if _, _, found := Split([]byte("[gateways]\nx = 1\n")); found {
		t.Error("[gateways] taken for [gateway]")
	}
}

// A node file with a [gateway] section loads both parts, and an error in
// the gateway's part names the file's own line.
func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) string {
		p := filepath.Join(dir, "node.toml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	base := "name = \"node-1\"\nlisten = \"127.0.0.1:0\"\ngossip = \"127.0.0.1:0\"\nadmin = \"off\"\n"
	nc, gc, err := LoadConfig(write(base))
	if err != nil || gc != nil || nc.Name != "node-1" {
		t.Fatalf("without [gateway]: %+v %v %v", nc.Name, gc, err)
	}
	_, gc, err = LoadConfig(write(base + "[gateway.http]\nlisten = \"127.0.0.1:0\"\n[[gateway.route]]\nmethod = \"GET\"\npath = \"/hello\"\ncomponent = \"hello\"\nkind = \"say\"\ninput = \"query:name\"\n"))
	if err != nil || gc == nil || len(gc.Routes) != 1 || gc.HTTP.Listen != "127.0.0.1:0" {
		t.Fatalf("with [gateway]: %+v %v", gc, err)
	}
	_, _, err = LoadConfig(write(base + "[gateway.http]\nlisten = \"127.0.0.1:0\"\nlisen = 1\n"))
	if err == nil || !strings.Contains(err.Error(), "node.toml:7") || !strings.Contains(err.Error(), "lisen") {
		t.Fatalf("unknown gateway key: %v, want one naming node.toml:7 and the key", err)
	}
}
