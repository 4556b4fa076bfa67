package render

import "strconv"

// Drawing parameters. A font pixel is Scale x Scale output pixels (Draw
// writes the 2x2 block directly: the loop would cost more than it); the
// text is then smoothed by a [1 2 1] filter across and down, so strokes
// get grey edges (anti-aliasing). Every pass visits each output pixel once:
// the cost grows with the image, that is with the length of the text.
const (
	Scale = 2

	glyphW = 5
	glyphH = 7
	adv    = glyphW + 1 // advance per character, in font pixels
	margin = 1          // around the text, in font pixels
)

// glyphs is a 5x7 dot font: 7 rows per character, bit 4 the leftmost
// column.
var glyphs = map[byte][glyphH]uint8{
	'0': {0b01110, 0b10001, 0b10011, 0b10101, 0b11001, 0b10001, 0b01110},
	'1': {0b00100, 0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110},
	'2': {0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b01000, 0b11111},
	'3': {0b11111, 0b00010, 0b00100, 0b00010, 0b00001, 0b10001, 0b01110},
	'4': {0b00010, 0b00110, 0b01010, 0b10010, 0b11111, 0b00010, 0b00010},
	'5': {0b11111, 0b10000, 0b11110, 0b00001, 0b00001, 0b10001, 0b01110},
	'6': {0b00110, 0b01000, 0b10000, 0b11110, 0b10001, 0b10001, 0b01110},
	'7': {0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b01000, 0b01000},
	'8': {0b01110, 0b10001, 0b10001, 0b01110, 0b10001, 0b10001, 0b01110},
	'9': {0b01110, 0b10001, 0b10001, 0b01111, 0b00001, 0b00010, 0b01100},
	'+': {0b00000, 0b00100, 0b00100, 0b11111, 0b00100, 0b00100, 0b00000},
	'-': {0b00000, 0b00000, 0b00000, 0b11111, 0b00000, 0b00000, 0b00000},
	'*': {0b00000, 0b00100, 0b10101, 0b01110, 0b10101, 0b00100, 0b00000},
	'/': {0b00000, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b00000},
	'^': {0b00100, 0b01010, 0b10001, 0b00000, 0b00000, 0b00000, 0b00000},
	'(': {0b00010, 0b00100, 0b01000, 0b01000, 0b01000, 0b00100, 0b00010},
	')': {0b01000, 0b00100, 0b00010, 0b00010, 0b00010, 0b00100, 0b01000},
	'=': {0b00000, 0b00000, 0b11111, 0b00000, 0b11111, 0b00000, 0b00000},
	' ': {},
}

// Render evaluates formula and draws "FORMULA = VALUE" (the formula as
// written) as a binary PGM, dark text on white.
func Render(formula string) ([]byte, error) {
	v, err := Eval(formula)
	if err != nil {
		return nil, err
	}
	return Draw(formula + " = " + v.String()), nil
}

// Size returns the dimensions of the image Draw makes of text.
func Size(text string) (w, h int) {
	n := max(len(text), 1)
	return (n*adv - 1 + 2*margin) * Scale, (glyphH + 2*margin) * Scale
}

// Draw renders text, whose bytes must all be in the font (Render
// guarantees it; others draw as blanks): dark text on white, smoothed.
//
// Three passes over the image rather than sampling each pixel against the
// glyph shapes: wasm code run by the host pays a check on every loop
// iteration (the host's way to stop a runaway step), and a shape renderer
// with 9 samples a pixel cost 7 ms for a 20-byte formula there (0.2 ms
// natively); this one costs about 0.45 ms there (0.02 ms natively).
func Draw(text string) []byte {
	w, h := Size(text)
	ink := make([]uint16, w*h) // 0 or 1, then 0..4 after the first pass
	for i := 0; i < len(text); i++ {
		g := glyphs[text[i]]
		x0 := (margin + i*adv) * Scale
		for y := range glyphH {
			for x := range glyphW {
				if g[y]&(1<<(glyphW-1-x)) == 0 {
					continue
				}
				p := (margin*Scale+y*Scale)*w + x0 + x*Scale
				ink[p], ink[p+1], ink[p+w], ink[p+w+1] = 1, 1, 1, 1 // Scale x Scale
			}
		}
	}
	// Across: each row in place, remembering the unfiltered left value.
	for y := range h {
		row := ink[y*w : y*w+w]
		left := uint16(0)
		for x := range w - 1 {
			c := row[x]
			row[x] = left + 2*c + row[x+1]
			left = c
		}
		row[w-1] = left + 2*row[w-1]
	}
	hdr := "P5\n" + strconv.Itoa(w) + " " + strconv.Itoa(h) + "\n255\n"
	out := make([]byte, len(hdr)+w*h)
	px := out[copy(out, hdr):]
	// Down, straight into the image. The margins are blank, so the first
	// and last rows are white and the rows between have both neighbours.
	for x := range w {
		px[x], px[(h-1)*w+x] = 255, 255
	}
	for y := 1; y < h-1; y++ {
		up, mid, down, dst := ink[(y-1)*w:y*w], ink[y*w:(y+1)*w], ink[(y+1)*w:(y+2)*w], px[y*w:(y+1)*w]
		for x := range dst {
			// A stroke is Scale = 2 pixels wide, so its middle sums to 12
			// of 16: that is full ink.
			dst[x] = shade[up[x]+2*mid[x]+down[x]]
		}
	}
	return out
}

// shade maps summed ink (0..16) to a grey level.
var shade = func() (t [17]uint8) {
	for v := range t {
		t[v] = uint8(255 - min(v*255/12, 255))
	}
	return t
}()
