// Package render is the formula renderer of the paper's evaluation app:
// it evaluates an arithmetic formula exactly (rationals over int64) and
// draws "FORMULA = VALUE" as an anti-aliased greyscale image (binary PGM)
// with a built-in 5x7 dot font. The formula-logic component runs it in
// the guest; the benchmark runs the same code on the host to check every
// reply byte for byte.
//
// It is pure and deterministic: integer arithmetic only (no floating
// point, whose fused multiply-adds may differ between architectures), no
// clock, no randomness, no state between calls. Its cost grows linearly
// with the length of the formula. It never panics on any input.
package render

import (
	"errors"
	"math/bits"
	"strconv"
)

// MaxFormula bounds a formula's length in bytes: the image (and the CPU
// spent on it) grows with the text.
const MaxFormula = 200

// maxDepth bounds parentheses and unary minus nesting, so a hostile
// formula cannot exhaust the stack.
const maxDepth = 64

// SyntaxError is a formula the grammar does not accept.
type SyntaxError struct {
	Pos int // byte offset in the formula
	Msg string
}

func (e *SyntaxError) Error() string { return "formula: " + e.Msg + " at byte " + strconv.Itoa(e.Pos) }

// Errors of well-formed formulas whose value is not a representable
// rational.
var (
	ErrDivZero  = errors.New("formula: division by zero")
	ErrOverflow = errors.New("formula: value out of range (int64 rationals)")
	ErrTooLong  = errors.New("formula: longer than " + strconv.Itoa(MaxFormula) + " bytes")
	ErrEmpty    = errors.New("formula: empty")
)

// Rat is a reduced fraction Num/Den with Den > 0.
type Rat struct{ Num, Den int64 }

func (r Rat) String() string {
	if r.Den == 1 {
		return strconv.FormatInt(r.Num, 10)
	}
	return strconv.FormatInt(r.Num, 10) + "/" + strconv.FormatInt(r.Den, 10)
}

// Eval evaluates src: integers, + - * / ^ (integer exponents, right
// associative), unary minus and parentheses; spaces are ignored.
func Eval(src string) (Rat, error) {
	if len(src) > MaxFormula {
		return Rat{}, ErrTooLong
	}
	p := parser{src: src}
	p.skip()
	if p.pos == len(src) {
		return Rat{}, ErrEmpty
	}
	v, err := p.expr(0)
	if err != nil {
		return Rat{}, err
	}
	if p.pos != len(src) {
		return Rat{}, p.unexpected(src[p.pos])
	}
	return v, nil
}

type parser struct {
	src string
	pos int
}

// fmt is not used: it would add half a megabyte to the module.
func (p *parser) fail(msg string) error { return &SyntaxError{Pos: p.pos, Msg: msg} }

func (p *parser) unexpected(c byte) error { return p.fail("unexpected " + strconv.QuoteRune(rune(c))) }

func (p *parser) skip() {
	for p.pos < len(p.src) && p.src[p.pos] == ' ' {
		p.pos++
	}
}

// peek returns the next non-space byte, or 0 at the end.
func (p *parser) peek() byte {
	p.skip()
	if p.pos == len(p.src) {
		return 0
	}
	return p.src[p.pos]
}

// expr := term (("+" | "-") term)*
func (p *parser) expr(depth int) (Rat, error) {
	v, err := p.term(depth)
	for err == nil {
		op := p.peek()
		if op != '+' && op != '-' {
			break
		}
		p.pos++
		var w Rat
		if w, err = p.term(depth); err != nil {
			break
		}
		if op == '-' {
			if w.Num == minInt {
				return Rat{}, ErrOverflow
			}
			w.Num = -w.Num
		}
		v, err = add(v, w)
	}
	return v, err
}

// term := unary (("*" | "/") unary)*
func (p *parser) term(depth int) (Rat, error) {
	v, err := p.unary(depth)
	for err == nil {
		op := p.peek()
		if op != '*' && op != '/' {
			break
		}
		p.pos++
		var w Rat
		if w, err = p.unary(depth); err != nil {
			break
		}
		if op == '/' {
			if w, err = inv(w); err != nil {
				break
			}
		}
		v, err = mul(v, w)
	}
	return v, err
}

// unary := "-" unary | power
func (p *parser) unary(depth int) (Rat, error) {
	if depth > maxDepth {
		return Rat{}, p.fail("nested deeper than " + strconv.Itoa(maxDepth))
	}
	if p.peek() == '-' {
		p.pos++
		v, err := p.unary(depth + 1)
		if err != nil {
			return Rat{}, err
		}
		if v.Num == minInt {
			return Rat{}, ErrOverflow
		}
		return Rat{-v.Num, v.Den}, nil
	}
	return p.power(depth)
}

// power := atom ("^" unary)?
func (p *parser) power(depth int) (Rat, error) {
	base, err := p.atom(depth)
	if err != nil || p.peek() != '^' {
		return base, err
	}
	p.pos++
	at := p.pos
	e, err := p.unary(depth + 1)
	if err != nil {
		return Rat{}, err
	}
	if e.Den != 1 {
		p.pos = at
		return Rat{}, p.fail("exponent " + e.String() + " is not an integer")
	}
	return pow(base, e.Num)
}

// atom := integer | "(" expr ")"
func (p *parser) atom(depth int) (Rat, error) {
	switch c := p.peek(); {
	case c == '(':
		p.pos++
		v, err := p.expr(depth + 1)
		if err != nil {
			return Rat{}, err
		}
		if p.peek() != ')' {
			return Rat{}, p.fail("missing )")
		}
		p.pos++
		return v, nil
	case c >= '0' && c <= '9':
		start := p.pos
		for p.pos < len(p.src) && p.src[p.pos] >= '0' && p.src[p.pos] <= '9' {
			p.pos++
		}
		n, err := strconv.ParseInt(p.src[start:p.pos], 10, 64)
		if err != nil {
			return Rat{}, ErrOverflow
		}
		return Rat{n, 1}, nil
	case c == 0:
		return Rat{}, p.fail("unexpected end")
	default:
		return Rat{}, p.unexpected(c)
	}
}

const minInt = -1 << 63

func gcd(a, b int64) int64 {
	if a < 0 {
		a = -a
	}
	for b != 0 {
		a, b = b, a%b
	}
	if a < 0 {
		a = -a
	}
	return a
}

// reduce builds Num/Den in lowest terms with a positive denominator.
func reduce(num, den int64) (Rat, error) {
	if den == 0 {
		return Rat{}, ErrDivZero
	}
	if num == minInt || den == minInt {
		return Rat{}, ErrOverflow
	}
	if den < 0 {
		num, den = -num, -den
	}
	if g := gcd(num, den); g > 1 {
		num, den = num/g, den/g
	}
	return Rat{num, den}, nil
}

func mul64(a, b int64) (int64, error) {
	hi, lo := bits.Mul64(uint64(abs(a)), uint64(abs(b)))
	if hi != 0 || lo > 1<<63-1 || a == minInt || b == minInt {
		return 0, ErrOverflow
	}
	if (a < 0) != (b < 0) {
		return -int64(lo), nil
	}
	return int64(lo), nil
}

func add64(a, b int64) (int64, error) {
	s := a + b
	if (a >= 0) == (b >= 0) && (s >= 0) != (a >= 0) {
		return 0, ErrOverflow
	}
	return s, nil
}

func abs(a int64) int64 {
	if a < 0 {
		return -a
	}
	return a
}

func add(a, b Rat) (Rat, error) {
	g := gcd(a.Den, b.Den)
	x, err1 := mul64(a.Num, b.Den/g)
	y, err2 := mul64(b.Num, a.Den/g)
	d, err3 := mul64(a.Den/g, b.Den)
	if err := errors.Join(err1, err2, err3); err != nil {
		return Rat{}, ErrOverflow
	}
	n, err := add64(x, y)
	if err != nil {
		return Rat{}, err
	}
	return reduce(n, d)
}

func mul(a, b Rat) (Rat, error) {
	// Cross-reduce first so products stay small.
	g1, g2 := max(gcd(a.Num, b.Den), 1), max(gcd(b.Num, a.Den), 1)
	n, err1 := mul64(a.Num/g1, b.Num/g2)
	d, err2 := mul64(a.Den/g2, b.Den/g1)
	if err1 != nil || err2 != nil {
		return Rat{}, ErrOverflow
	}
	return reduce(n, d)
}

func inv(a Rat) (Rat, error) { return reduce(a.Den, a.Num) }

// pow raises r to the integer power e by squaring; |e| is bounded by
// overflow long before the loop gets long (at most 64 squarings).
func pow(r Rat, e int64) (Rat, error) {
	if e < 0 {
		if e == minInt {
			return Rat{}, ErrOverflow
		}
		var err error
		if r, err = inv(r); err != nil {
			return Rat{}, err
		}
		e = -e
	}
	out := Rat{1, 1}
	for e > 0 {
		var err error
		if e&1 == 1 {
			if out, err = mul(out, r); err != nil {
				return Rat{}, err
			}
		}
		if e >>= 1; e > 0 {
			if r, err = mul(r, r); err != nil {
				return Rat{}, err
			}
		}
	}
	return out, nil
}
