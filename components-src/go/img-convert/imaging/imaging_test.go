package imaging

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"testing"
)

// A shrunk photo keeps its colours: a flat orange JPEG scaled 10x down by
// the block-average then Catmull-Rom path is still orange, at the size Fit
// says.
func TestConvertKeepsColour(t *testing.T) {
	src := image.NewRGBA(image.Rect(0, 0, 1000, 600))
	for i := 0; i < len(src.Pix); i += 4 {
		copy(src.Pix[i:], []byte{230, 120, 30, 255})
	}
	var in bytes.Buffer
	if err := jpeg.Encode(&in, src, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	out, err := Convert(in.Bytes(), 100, 100, "png", 85, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	img, format, err := image.Decode(bytes.NewReader(out))
	if err != nil || format != "png" || img.Bounds().Dx() != 100 || img.Bounds().Dy() != 60 {
		t.Fatalf("%v %s %v, want a 100x60 png", err, format, img.Bounds())
	}
	r, g, b, _ := img.At(50, 30).RGBA()
	c := color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), 255}
	if d := func(a, b uint8) int { return max(int(a)-int(b), int(b)-int(a)) }; d(c.R, 230) > 8 || d(c.G, 120) > 8 || d(c.B, 30) > 8 {
		t.Errorf("centre pixel %v, want about {230 120 30}", c)
	}
	if _, err := Convert([]byte("not an image"), 10, 10, "png", 85, 1<<30); err == nil {
		t.Error("converted bytes that are no image")
	}
	if _, err := Convert(in.Bytes(), 10, 10, "png", 85, 1000); err == nil {
		t.Error("converted an image over the pixel limit")
	}
}

func TestFit(t *testing.T) {
	for _, tc := range []struct{ w, h, mw, mh, ww, wh int }{
		{1600, 1200, 320, 0, 320, 240}, {1600, 1200, 0, 300, 400, 300}, {1600, 1200, 320, 100, 133, 100},
		{100, 50, 400, 400, 100, 50}, {4000, 1, 10, 0, 10, 1},
	} {
		if w, h := Fit(tc.w, tc.h, tc.mw, tc.mh); w != tc.ww || h != tc.wh {
			t.Errorf("Fit(%d,%d,%d,%d) = %dx%d, want %dx%d", tc.w, tc.h, tc.mw, tc.mh, w, h, tc.ww, tc.wh)
		}
	}
}
