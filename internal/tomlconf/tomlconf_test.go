package tomlconf

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

const doc = `# a sample
name = "n1"   # trailing comment
seeds = [
  "a = 1",
  [1, 2],
]
limits.max_depth = 9

[scheduler] # comment
policy = "p2c"
"quoted key" = 1
'single.quoted' = 2

[ components ]
"my.mod" = "m.wasm"
echo="e.wasm"

[membership]
inline = { key = "k", deep = { x = 1 } }
note = """
[fake]
policy = 3
"""
after = 1

[[route]]
path = "/a"

[[route]]                     # second
path = "/b"
[route.extra]
flag = true
[[ route ]]
path = "/c"
`

func TestKeyLine(t *testing.T) {
	for _, tc := range []struct {
		key  string
		nth  int
		line int
	}{
		{"name", 0, 2},
		{"seeds", 0, 3},
		{"limits.max_depth", 0, 7},
		{"limits", 0, 7}, // a table given by dotted keys: its first key
		{"scheduler", 0, 9},
		{"scheduler.policy", 0, 10},
		{"scheduler.quoted key", 0, 11},
		{"scheduler.single.quoted", 0, 12},
		{"components", 0, 14},
		{"components.my.mod", 0, 15},
		{"components.echo", 0, 16},
		{"membership.inline.key", 0, 19}, // inside an inline table: its line
		{"membership.inline.deep.x", 0, 19},
		{"membership.after", 0, 24},
		{"fake", 0, 0}, // inside a multi-line string
		{"fake.policy", 0, 0},
		{"route", 0, 26},
		{"route.path", 0, 27},
		{"route", 1, 26},
		{"route", 2, 29},
		{"route", 3, 33},
		{"route", 4, 0},
		{"route.extra", 0, 31},
		{"route.extra.flag", 0, 32},
		{"route.extra", 1, 0}, // not an array
		{"missing", 0, 0},
		{"scheduler.missing", 0, 0},
		{"a", 0, 0}, // a string value in a multi-line array is no key
		{"1", 0, 0},
	} {
		if got := KeyLine([]byte(doc), tc.key, tc.nth); got != tc.line {
			t.Errorf("KeyLine(%q, %d) = %d, want %d", tc.key, tc.nth, got, tc.line)
		}
	}
}

func TestKeyLineCRLF(t *testing.T) {
	data := []byte("a = 1\r\n[t]\r\nb = 2\r\n")
	if got := KeyLine(data, "t.b", 0); got != 3 {
		t.Errorf("line %d, want 3", got)
	}
}

type conf struct {
	Name  string        `toml:"name"`
	Wait  time.Duration `toml:"wait"`
	Table struct {
		N int `toml:"n"`
	} `toml:"table"`
}

func TestDecode(t *testing.T) {
	c := conf{Name: "default"}
	unknown, err := Decode([]byte("wait = \"2s\"\n[table]\nn = 3\n"), &c)
	if err != nil || len(unknown) != 0 {
		t.Fatalf("unknown %v, err %v", unknown, err)
	}
	if c.Name != "default" || c.Wait != 2*time.Second || c.Table.N != 3 {
		t.Errorf("decoded %+v", c)
	}

	unknown, err = Decode([]byte("nme = 1\n[table]\nm = 2\n[extra]\na = 1\nb = 2\n[\"x.y\"]\nz = 1\n"), &conf{})
	if err != nil {
		t.Fatal(err)
	}
	want := []Unknown{{"nme", 1}, {"table.m", 3}, {"extra", 4}, {`"x.y"`, 7}}
	if len(unknown) != len(want) {
		t.Fatalf("unknown %v, want %v", unknown, want)
	}
	for i := range want {
		if unknown[i] != want[i] {
			t.Errorf("unknown[%d] = %v, want %v", i, unknown[i], want[i])
		}
	}
}

func TestLocate(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		line       int
		key, msg   string
	}{
		{"syntax", "name = \"a\"\nwait = = 2\n", 2, "wait", "expected value"},
		{"wrong type", "[table]\nn = \"four\"\n", 2, "table.n", "incompatible types"},
		{"bad duration", "wait = \"soon\"\n", 1, "wait", "soon"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode([]byte(tc.data), &conf{})
			if err == nil {
				t.Fatal("decoded")
			}
			line, key, problem := Locate(err)
			if line != tc.line || key != tc.key || !strings.Contains(problem.Error(), tc.msg) {
				t.Errorf("Locate = %d, %q, %v; want %d, %q, %q", line, key, problem, tc.line, tc.key, tc.msg)
			}
			if strings.HasPrefix(problem.Error(), "toml:") {
				t.Errorf("problem %q keeps toml's prefix", problem)
			}
		})
	}
	other := errors.New("something else")
	if line, key, problem := Locate(other); line != 0 || key != "" || problem != other {
		t.Errorf("Locate(other) = %d, %q, %v", line, key, problem)
	}
}

func TestSecretKey(t *testing.T) {
	if k, err := SecretKey(""); k != nil || err != nil {
		t.Errorf("empty: %v, %v", k, err)
	}
	for _, n := range []int{16, 24, 32} {
		raw := make([]byte, n)
		raw[0] = byte(n)
		k, err := SecretKey(base64.StdEncoding.EncodeToString(raw))
		if err != nil || len(k) != n || k[0] != byte(n) {
			t.Errorf("%d bytes: %v, %v", n, k, err)
		}
	}
	for in, want := range map[string]string{"c2hvcnQ=": "5 bytes, want 16, 24 or 32", "!!": "not base64"} {
		if _, err := SecretKey(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", in, err, want)
		}
	}
}
