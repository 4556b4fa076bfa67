// Package imgsamples makes the sample images of the image service
// (docs/images.md) from code, so the project ships no binary photos: the
// same bytes on every run, PNG and JPEG, from a few KiB to about 1 MiB.
// It never reads or writes files.
package imgsamples

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
)

// Sample is one named image.
type Sample struct {
	Name string
	Data []byte
}

// All returns the samples, in a fixed order.
func All() []Sample {
	return []Sample{
		{"mandelbrot.png", encodePNG(mandelbrot(640, 480))},
		{"sunset.jpg", encodeJPEG(sunset(1024, 640), 90)},
		{"rings.png", encodePNG(rings(400, 400))},
		{"noise.jpg", Large()},
	}
}

// Large is a JPEG of about 1 MiB (1,000,000 to 1,048,576 bytes): the
// original of the by-reference benchmarks.
func Large() []byte {
	// Fine detail defeats compression; the size is tuned by quality.
	img := texture(1024, 768)
	for q := 100; q > 40; q -= 2 {
		b := encodeJPEG(img, q)
		if len(b) <= 1<<20 {
			return b
		}
	}
	return encodeJPEG(img, 40)
}

func encodePNG(img image.Image) []byte {
	var b bytes.Buffer
	_ = png.Encode(&b, img) // writing to memory cannot fail
	return b.Bytes()
}

func encodeJPEG(img image.Image, q int) []byte {
	var b bytes.Buffer
	_ = jpeg.Encode(&b, img, &jpeg.Options{Quality: q})
	return b.Bytes()
}

func mandelbrot(w, h int) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for py := 0; py < h; py++ {
		for px := 0; px < w; px++ {
			x0 := float64(px)/float64(w)*3.5 - 2.5
			y0 := float64(py)/float64(h)*2.4 - 1.2
			x, y, i := 0.0, 0.0, 0
			for ; i < 64 && x*x+y*y < 4; i++ {
				x, y = x*x-y*y+x0, 2*x*y+y0
			}
			t := float64(i) / 64
			img.Set(px, py, color.RGBA{uint8(255 * t), uint8(255 * t * t), uint8(255 * math.Sqrt(t)), 255})
		}
	}
	return img
}

func sunset(w, h int) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	cx, cy, r := float64(w)/2, float64(h)*0.62, float64(h)/5
	for y := 0; y < h; y++ {
		t := float64(y) / float64(h)
		sky := color.RGBA{uint8(40 + 215*t), uint8(60 + 100*t), uint8(160 - 120*t), 255}
		for x := 0; x < w; x++ {
			c := sky
			if d := math.Hypot(float64(x)-cx, float64(y)-cy); d < r {
				c = color.RGBA{255, uint8(200 - 80*d/r), 60, 255}
			}
			if float64(y) > float64(h)*0.7 {
				wave := math.Sin(float64(x)/23+float64(y)/7) * 12
				c = color.RGBA{20, uint8(50 + wave), uint8(90 + wave), 255}
			}
			img.Set(x, y, c)
		}
	}
	return img
}

func rings(w, h int) image.Image {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			d := math.Hypot(float64(x-w/2), float64(y-h/2))
			v := uint8(128 + 127*math.Sin(d/6))
			img.Set(x, y, color.NRGBA{v, 255 - v, uint8(x * 255 / w), uint8(255 - int(d)/2%256)})
		}
	}
	return img
}

// texture is deterministic fine-grained detail (an xorshift generator mixed
// with smooth colour), hard to compress.
func texture(w, h int) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	s := uint32(2463534242)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			s ^= s << 13
			s ^= s >> 17
			s ^= s << 5
			n := uint8(s)
			img.Set(x, y, color.RGBA{uint8(x*255/w) ^ n>>2, uint8(y*255/h) ^ n>>3, n, 255})
		}
	}
	return img
}
