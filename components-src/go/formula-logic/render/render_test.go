package render

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestEval(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"7", "7"},
		{"1+2*3", "7"},
		{"(1+2)*3", "9"},
		{"1/3+1/6", "1/2"},
		{"2-5", "-3"},
		{"-2^2", "-4"},
		{"(-2)^2", "4"},
		{"2^3^2", "512"}, // right associative
		{"2^-2", "1/4"},
		{"6/-4", "-3/2"},
		{" 12 * ( 3 - 1 ) ", "24"},
		{"0^0", "1"},
		{"1^1000000000000", "1"},
		{"9223372036854775807", "9223372036854775807"},
	} {
		v, err := Eval(c.in)
		if err != nil || v.String() != c.want {
			t.Errorf("Eval(%q) = %s, %v; want %s", c.in, v, err, c.want)
		}
	}
}

func TestEvalErrors(t *testing.T) {
	var syn *SyntaxError
	for _, c := range []struct {
		in   string
		want error // nil: a *SyntaxError
	}{
		{"", ErrEmpty},
		{"   ", ErrEmpty},
		{"1/0", ErrDivZero},
		{"0^-1", ErrDivZero},
		{"(1-1)/(2-2)", ErrDivZero},
		{"9223372036854775808", ErrOverflow},
		{"9223372036854775807+1", ErrOverflow},
		{"2^64", ErrOverflow},
		{"3037000500*3037000500", ErrOverflow},
		{strings.Repeat("1", MaxFormula+1), ErrTooLong},
		{"1+", nil},
		{"(1", nil},
		{"1)", nil},
		{"x", nil},
		{"2^(1/2)", nil},
		{strings.Repeat("(", 70) + "1" + strings.Repeat(")", 70), nil},
		{strings.Repeat("-", 100) + "1", nil},
	} {
		_, err := Eval(c.in)
		switch {
		case c.want != nil && !errors.Is(err, c.want):
			t.Errorf("Eval(%q): %v, want %v", c.in, err, c.want)
		case c.want == nil && !errors.As(err, &syn):
			t.Errorf("Eval(%q): %v, want a *SyntaxError", c.in, err)
		}
	}
}

func TestRender(t *testing.T) {
	img, err := Render("1+2")
	if err != nil {
		t.Fatal(err)
	}
	w, h := Size("1+2 = 3")
	hdr := fmt.Sprintf("P5\n%d %d\n255\n", w, h)
	if !bytes.HasPrefix(img, []byte(hdr)) || len(img) != len(hdr)+w*h {
		t.Fatalf("image %d bytes starting %q; want header %q and %d pixels", len(img), img[:min(len(img), 16)], hdr, w*h)
	}
	px := img[len(hdr):]
	var dark, grey int
	for _, p := range px {
		switch {
		case p == 0:
			dark++
		case p < 255:
			grey++
		}
	}
	// Strokes are solid inside and anti-aliased at their edges; the
	// margins are white.
	if dark == 0 || grey == 0 || px[0] != 255 || px[len(px)-1] != 255 {
		t.Errorf("%d dark and %d grey pixels, corners %d %d", dark, grey, px[0], px[len(px)-1])
	}
	again, _ := Render("1+2")
	if !bytes.Equal(img, again) {
		t.Error("two renders of one formula differ")
	}
	other, _ := Render("1+3")
	if bytes.Equal(img, other) {
		t.Error("1+2 and 1+3 render the same")
	}
}

// FuzzRender: no input panics, and whatever evaluates renders to an image
// of the size Size promises.
func FuzzRender(f *testing.F) {
	for _, s := range []string{"1+2*3", "(1/3)^-2", "--1", "2^^3", ")(", "9999999999^9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		img, err := Render(s)
		if err != nil {
			return
		}
		v, _ := Eval(s)
		w, h := Size(s + " = " + v.String())
		if len(img) < w*h {
			t.Fatalf("%q: %d bytes for %dx%d", s, len(img), w, h)
		}
	})
}

func BenchmarkRender(b *testing.B) {
	for _, n := range []int{1, 4} { // formula length grows with n
		f := strings.Repeat("(12+34)*5-6/7+", n) + "1"
		b.Run(fmt.Sprintf("%dbytes", len(f)), func(b *testing.B) {
			for b.Loop() {
				if _, err := Render(f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
