// Package imgspec is what the image service's components agree on: image
// names, the variant a GET asks for, and the inputs the components pass
// each other. It validates; it never touches pixels.
package imgspec

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Limits of the service.
const (
	MaxName     = 64       // bytes in an image name
	MaxSide     = 4096     // pixels of a variant's width or height
	MaxUpload   = 1 << 20  // bytes of an original (one KV value)
	MaxPixels   = 40 << 20 // pixels of an original, so decoding is bounded (about 6500 x 6500)
	DefaultFmt  = "jpeg"
	JPEGQuality = 85
)

// Failure codes the components end with; the gateway answers them as HTTP
// statuses.
const (
	BadRequest      = 400
	NotFound        = 404
	Conflict        = 409
	TooLarge        = 413
	UnsupportedType = 415
)

// ValidName checks an image name: 1 to 64 ASCII letters, digits, '.', '_'
// or '-', starting with a letter or digit.
func ValidName(name string) error {
	if name == "" {
		return fmt.Errorf("the image name is empty")
	}
	if len(name) > MaxName {
		return fmt.Errorf("image name of %d bytes is over %d", len(name), MaxName)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == '-'):
		default:
			return fmt.Errorf("image name %q may hold only letters, digits, '.', '_' and '-', starting with a letter or digit", name)
		}
	}
	return nil
}

// Variant is one rendering of an original: at most W x H pixels (0: that
// side follows the aspect ratio), in Fmt ("png" or "jpeg").
type Variant struct {
	Name string
	W, H int
	Fmt  string
}

// ParseQuery reads w, h and fmt of a GET. At least one of w and h is
// needed; fmt defaults to jpeg ("jpg" is taken for jpeg).
func ParseQuery(name, rawQuery string) (Variant, error) {
	v := Variant{Name: name, Fmt: DefaultFmt}
	if err := ValidName(name); err != nil {
		return v, err
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return v, fmt.Errorf("bad query string: %v", err)
	}
	for key := range q {
		switch key {
		case "w", "h", "fmt":
		default:
			return v, fmt.Errorf("unknown parameter %q (want w, h and fmt)", key)
		}
	}
	side := func(key string) (int, error) {
		s := q.Get(key)
		if s == "" {
			return 0, nil
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxSide {
			return 0, fmt.Errorf("%s=%q: want a whole number of pixels from 1 to %d", key, s, MaxSide)
		}
		return n, nil
	}
	if v.W, err = side("w"); err != nil {
		return v, err
	}
	if v.H, err = side("h"); err != nil {
		return v, err
	}
	if v.W == 0 && v.H == 0 {
		return v, fmt.Errorf("give w or h (or both), in pixels from 1 to %d", MaxSide)
	}
	switch f := strings.ToLower(q.Get("fmt")); f {
	case "":
	case "png", "jpeg":
		v.Fmt = f
	case "jpg":
		v.Fmt = "jpeg"
	default:
		return v, fmt.Errorf("fmt=%q: want png or jpeg", q.Get("fmt"))
	}
	return v, nil
}

// String is the variant as the components pass it, and as the cache keys it:
// "NAME/WxH.FMT".
func (v Variant) String() string {
	return v.Name + "/" + strconv.Itoa(v.W) + "x" + strconv.Itoa(v.H) + "." + v.Fmt
}

// ContentType is the media type of the variant's bytes.
func (v Variant) ContentType() string { return "image/" + v.Fmt }

// ParseVariant reads String's form back, validating it again (a component
// does not trust its caller).
func ParseVariant(s string) (Variant, error) {
	name, rest, ok := strings.Cut(s, "/")
	dims, f, ok2 := strings.Cut(rest, ".")
	ws, hs, ok3 := strings.Cut(dims, "x")
	if !ok || !ok2 || !ok3 {
		return Variant{}, fmt.Errorf("variant %q is not NAME/WxH.FMT", s)
	}
	q := url.Values{"fmt": {f}}
	if ws != "0" {
		q.Set("w", ws)
	}
	if hs != "0" {
		q.Set("h", hs)
	}
	return ParseQuery(name, q.Encode())
}
