package conformance

import (
	"context"
	"fmt"
	"hash/adler32"
	"hash/crc32"
	"strings"
	"sync"
	"testing"

	"github.com/tsubame-rt/tsubame/lp"
)

// The sample components that do real work in their language, checked
// against Go's own answers.
var samples = []string{"checksum_c", "calc_rust", "words_as", "greet_c", "greet_rust", "greet_as", "greet_wat", "exclaim_wat", "greet"}

var (
	samplesOnce    sync.Once
	samplesFixture *fixture
	samplesErr     error
)

func sampleHost(t *testing.T) *fixture {
	t.Helper()
	samplesOnce.Do(func() { samplesFixture, samplesErr = newFixture(context.Background(), samples) })
	if samplesErr != nil {
		t.Fatal(samplesErr)
	}
	return samplesFixture
}

func TestChecksumC(t *testing.T) {
	f := sampleHost(t)
	inputs := [][]byte{nil, []byte("a"), []byte("The quick brown fox jumps over the lazy dog"), pattern(1 << 20)}
	for _, in := range inputs {
		p := f.exec(t, "checksum_c", "crc32", in)
		reply(fmt.Sprintf("%08x", crc32.ChecksumIEEE(in))).check(t, p)
		p = f.exec(t, "checksum_c", "adler32", in)
		reply(fmt.Sprintf("%08x", adler32.Checksum(in))).check(t, p)
	}
	failure(404, `no handler for kind "md5"`).check(t, f.exec(t, "checksum_c", "md5", nil))
}

func TestCalcRust(t *testing.T) {
	f := sampleHost(t)
	for _, c := range []struct {
		expr string
		want want
	}{
		{"1 + 2 * 3", reply("7")},
		{"(1 + 2) * 3", reply("9")},
		{" -7 / 2 ", reply("-3")},
		{"-7 % 3", reply("-1")},
		{"--5", reply("5")},
		{"2*(3+(4-1))*-1", reply("-12")},
		{"9223372036854775807", reply("9223372036854775807")},
		{"9223372036854775807 + 1", failure(422, "overflow")},
		{"99999999999999999999", failure(422, "number too large")},
		{"1 / (2 - 2)", failure(422, "division by zero")},
		{"", failure(400, "unexpected end at byte 0")},
		{"1 +", failure(400, "unexpected end at byte 3")},
		{"(1", failure(400, "expected ')'")},
		{"1 2", failure(400, "unexpected input at byte 2")},
		{"x", failure(400, "expected a number")},
		{strings.Repeat("(", 100) + "1" + strings.Repeat(")", 100), failure(400, "nested too deep")},
		{strings.Repeat("-", 100) + "1", failure(400, "nested too deep")},
	} {
		t.Run(c.expr, func(t *testing.T) { c.want.check(t, f.exec(t, "calc_rust", "eval", []byte(c.expr))) })
	}
}

func TestWordsAS(t *testing.T) {
	f := sampleHost(t)
	for _, in := range []string{"", "one", "  two words\n", "a\tb\r\nc d\n\n", "héllo wörld"} {
		lines := strings.Count(in, "\n")
		words := len(strings.FieldsFunc(in, func(r rune) bool { return r == ' ' || r == '\t' || r == '\r' || r == '\n' }))
		reply(fmt.Sprintf("%d %d %d", lines, words, len(in))).check(t, f.exec(t, "words_as", "count", []byte(in)))
		up := strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' {
				return r - 32
			}
			return r
		}, in)
		reply(up).check(t, f.exec(t, "words_as", "upper", []byte(in)))
	}
}

// Every greet answers alike: the same reply, the same 400 for an empty
// name, the same 404 for another kind.
func TestGreetTwins(t *testing.T) {
	f := sampleHost(t)
	for _, g := range []string{"greet", "greet_c", "greet_rust", "greet_as", "greet_wat"} {
		t.Run(g, func(t *testing.T) {
			reply("Hello, world").check(t, f.exec(t, g, "greet", []byte("world")))
			failure(400, "greet: empty name").check(t, f.exec(t, g, "greet", nil))
			failure(404, "no handler").check(t, f.exec(t, g, "wave", []byte("x")))
		})
	}
}

// exclaim_wat calls whatever is installed as "greet" and resumes.
func TestExclaimWAT(t *testing.T) {
	f := sampleHost(t)
	p := f.exec(t, "exclaim_wat", "greet", []byte("wat"))
	want{reply: []byte("Hello, wat!"), steps: 2}.check(t, p)
	if len(p.Entries) != 2 || p.Entries[1].Target != "greet" || p.Entries[1].State != lp.StateDone {
		t.Fatalf("entries %+v, want exclaim_wat then a finished greet", p.Entries)
	}
	failure(400, "greet: empty name").check(t, f.exec(t, "exclaim_wat", "greet", nil))
}
