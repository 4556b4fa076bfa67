package render

import "strconv"

// Drawing parameters. A font pixel is Scale output pixels wide; each
// output pixel is sampled Super x Super times (the anti-aliasing), so a
// character costs about (6 Scale Super)(9 Scale Super) coverage tests per
// shape that touches it.
const (
	Scale = 2
	Super = 3

	cell   = Scale * Super // a font pixel, in samples
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
// guarantees it; others draw as blanks). Every lit font pixel is a disc
// and every pair of lit neighbours, straight or diagonal, is joined by a
// stroke of the same width, so characters come out as smooth strokes
// rather than squares; coverage is sampled Super x Super per pixel.
func Draw(text string) []byte {
	w, h := Size(text)
	sw, sh := w*Super, h*Super
	cov := make([]bool, sw*sh) // one sample each
	for i := 0; i < len(text); i++ {
		g := glyphs[text[i]]
		x0 := (margin + i*adv) * cell
		y0 := margin * cell
		for y := range glyphH {
			for x := range glyphW {
				if !lit(g, x, y) {
					continue
				}
				ax, ay := x0+x*cell, y0+y*cell
				stroke(cov, sw, ax, ay, ax, ay)
				// Join to the neighbours after this one (each pair once).
				for _, d := range [4][2]int{{1, 0}, {0, 1}, {1, 1}, {-1, 1}} {
					// A diagonal is skipped when a straight path already
					// joins the two (it would only thicken the corner).
					if lit(g, x+d[0], y+d[1]) && (d[0] == 0 || d[1] == 0 || !lit(g, x+d[0], y) && !lit(g, x, y+d[1])) {
						stroke(cov, sw, ax, ay, ax+d[0]*cell, ay+d[1]*cell)
					}
				}
			}
		}
	}
	hdr := "P5\n" + strconv.Itoa(w) + " " + strconv.Itoa(h) + "\n255\n"
	out := make([]byte, len(hdr)+w*h)
	px := out[copy(out, hdr):]
	for y := range h {
		for x := range w {
			n := 0
			for sy := range Super {
				row := cov[(y*Super+sy)*sw+x*Super:]
				for sx := range Super {
					if row[sx] {
						n++
					}
				}
			}
			px[y*w+x] = uint8(255 - 255*n/(Super*Super))
		}
	}
	return out
}

func lit(g [glyphH]uint8, x, y int) bool {
	return x >= 0 && x < glyphW && y >= 0 && y < glyphH && g[y]&(1<<(glyphW-1-x)) != 0
}

// stroke marks every sample within the pen's radius of the segment from
// the font-pixel corner (ax, ay) to (bx, by) (sample coordinates; the
// segment runs between the pixels' centres). All arithmetic is on
// integers in doubled coordinates, so the result is exact.
func stroke(cov []bool, sw, ax, ay, bx, by int) {
	const r = cell * 11 / 20 // pen radius: 0.55 font pixel
	// Doubled coordinates: a sample's centre is 2s+1, a font pixel's
	// centre 2*corner + cell.
	pax, pay := 2*ax+cell, 2*ay+cell
	dx, dy := 2*(bx-ax), 2*(by-ay)
	den := dx*dx + dy*dy
	r2 := (2 * r) * (2 * r)
	minX, maxX := min(ax, bx)+cell/2-r-1, max(ax, bx)+cell/2+r+1
	minY, maxY := min(ay, by)+cell/2-r-1, max(ay, by)+cell/2+r+1
	for sy := max(minY, 0); sy <= maxY && sy < len(cov)/sw; sy++ {
		for sx := max(minX, 0); sx <= maxX && sx < sw; sx++ {
			wx, wy := 2*sx+1-pax, 2*sy+1-pay
			d2 := wx*wx + wy*wy
			if den > 0 {
				t := wx*dx + wy*dy
				switch {
				case t >= den:
					ex, ey := wx-dx, wy-dy
					d2 = ex*ex + ey*ey
				case t > 0:
					// Squared distance to the line, times den.
					if d2*den-t*t <= r2*den {
						cov[sy*sw+sx] = true
					}
					continue
				}
			}
			if d2 <= r2 {
				cov[sy*sw+sx] = true
			}
		}
	}
}
