// Package imaging decodes, resizes and encodes images for the image
// service's convert component and for the plain Go server it is measured
// against (the same code on both sides). It never reads files or the network.
package imaging

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"

	"golang.org/x/image/draw"
)

// Sniff returns the format ("png" or "jpeg") and size of an encoded image,
// reading only its header.
func Sniff(b []byte) (format string, w, h int, err error) {
	cfg, format, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return "", 0, 0, fmt.Errorf("not a PNG or JPEG image: %v", err)
	}
	return format, cfg.Width, cfg.Height, nil
}

// Fit returns the size of an image of w x h scaled to fit in maxW x maxH
// (0: unbounded) with its aspect ratio kept, never larger than the original
// and at least 1 x 1.
func Fit(w, h, maxW, maxH int) (int, int) {
	scale := 1.0
	if maxW > 0 && float64(maxW)/float64(w) < scale {
		scale = float64(maxW) / float64(w)
	}
	if maxH > 0 && float64(maxH)/float64(h) < scale {
		scale = float64(maxH) / float64(h)
	}
	nw, nh := int(float64(w)*scale+0.5), int(float64(h)*scale+0.5)
	return max(nw, 1), max(nh, 1)
}

// Convert decodes src (PNG or JPEG), scales it to fit maxW x maxH with the
// Catmull-Rom filter, and encodes it as format ("png" or "jpeg", quality q).
// maxPixels bounds the original's size before anything is decoded.
func Convert(src []byte, maxW, maxH int, format string, q, maxPixels int) ([]byte, error) {
	_, w, h, err := Sniff(src)
	if err != nil {
		return nil, err
	}
	if w*h > maxPixels {
		return nil, fmt.Errorf("image of %dx%d pixels is over the limit of %d pixels", w, h, maxPixels)
	}
	img, _, err := image.Decode(bytes.NewReader(src))
	if err != nil {
		return nil, fmt.Errorf("decode: %v", err)
	}
	nw, nh := Fit(w, h, maxW, maxH)
	if y, ok := img.(*image.YCbCr); ok {
		// A photo shrunk a lot: average k x k blocks of each plane first
		// (cheap integer work), so that Catmull-Rom filters at most about
		// twice the output's size. The result is the same to the eye and
		// several times faster.
		if k := min(w/(2*nw), h/(2*nh)); k >= 2 {
			img = shrinkYCbCr(y, k)
		}
	}
	dst := image.NewRGBA(image.Rect(0, 0, nw, nh))
	draw.CatmullRom.Scale(dst, dst.Bounds(), img, img.Bounds(), draw.Src, nil)
	var out bytes.Buffer
	switch format {
	case "png":
		err = png.Encode(&out, dst)
	case "jpeg":
		err = jpeg.Encode(&out, dst, &jpeg.Options{Quality: q})
	default:
		return nil, fmt.Errorf("unknown format %q", format)
	}
	if err != nil {
		return nil, fmt.Errorf("encode %s: %v", format, err)
	}
	return out.Bytes(), nil
}

// shrinkYCbCr averages k x k blocks of each plane of src.
func shrinkYCbCr(src *image.YCbCr, k int) *image.YCbCr {
	b := src.Bounds()
	dst := image.NewYCbCr(image.Rect(0, 0, b.Dx()/k, b.Dy()/k), src.SubsampleRatio)
	avg := func(dp []byte, dstride, dw, dh int, sp []byte, sstride, sw, sh int) {
		for y := 0; y < dh; y++ {
			for x := 0; x < dw; x++ {
				sum, n := 0, 0
				for yy := y * k; yy < min(y*k+k, sh); yy++ {
					row := sp[yy*sstride:]
					for xx := x * k; xx < min(x*k+k, sw); xx++ {
						sum += int(row[xx])
						n++
					}
				}
				if n > 0 {
					dp[y*dstride+x] = byte(sum / n)
				}
			}
		}
	}
	sw, sh := b.Dx(), b.Dy()
	avg(dst.Y, dst.YStride, dst.Rect.Dx(), dst.Rect.Dy(), src.Y[src.YOffset(b.Min.X, b.Min.Y):], src.YStride, sw, sh)
	dcw, dch := chromaSize(dst)
	scw, sch := chromaSize(src)
	avg(dst.Cb, dst.CStride, dcw, dch, src.Cb[src.COffset(b.Min.X, b.Min.Y):], src.CStride, scw, sch)
	avg(dst.Cr, dst.CStride, dcw, dch, src.Cr[src.COffset(b.Min.X, b.Min.Y):], src.CStride, scw, sch)
	return dst
}

// chromaSize is the width and height of the chroma planes of p.
func chromaSize(p *image.YCbCr) (int, int) {
	w, h := p.Rect.Dx(), p.Rect.Dy()
	switch p.SubsampleRatio {
	case image.YCbCrSubsampleRatio422:
		return (w + 1) / 2, h
	case image.YCbCrSubsampleRatio420:
		return (w + 1) / 2, (h + 1) / 2
	case image.YCbCrSubsampleRatio440:
		return w, (h + 1) / 2
	case image.YCbCrSubsampleRatio411:
		return (w + 3) / 4, h
	case image.YCbCrSubsampleRatio410:
		return (w + 3) / 4, (h + 1) / 2
	}
	return w, h
}
