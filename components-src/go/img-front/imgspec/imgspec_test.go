package imgspec

import (
	"strings"
	"testing"
)

func TestParseQuery(t *testing.T) {
	for _, tc := range []struct {
		name, query string
		want        string // Variant.String(), or "" with err
		err         string
	}{
		{"a.png", "w=320", "a.png/320x0.jpeg", ""},
		{"a.png", "h=10&fmt=PNG", "a.png/0x10.png", ""},
		{"a.png", "w=5&h=6&fmt=jpg", "a.png/5x6.jpeg", ""},
		{"a.png", "", "", "give w or h"},
		{"a.png", "w=4097", "", "from 1 to 4096"},
		{"a.png", "w=-1", "", "from 1 to 4096"},
		{"a.png", "w=1.5", "", "whole number"},
		{"a.png", "w=1&fmt=gif", "", `fmt="gif"`},
		{"a.png", "w=1&q=2", "", `unknown parameter "q"`},
		{"a.png", "w=%zz", "", "bad query string"},
		{".hidden", "w=1", "", "starting with a letter or digit"},
		{"a/b", "w=1", "", "may hold only"},
		{strings.Repeat("x", 65), "w=1", "", "over 64"},
	} {
		v, err := ParseQuery(tc.name, tc.query)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s?%s: %v, want an error mentioning %q", tc.name, tc.query, err, tc.err)
		case tc.err == "" && (err != nil || v.String() != tc.want):
			t.Errorf("%s?%s: %v %v, want %s", tc.name, tc.query, v, err, tc.want)
		case tc.err == "":
			back, err := ParseVariant(v.String())
			if err != nil || back != v {
				t.Errorf("ParseVariant(%s) = %v, %v", v, back, err)
			}
		}
	}
	if _, err := ParseVariant("a.png/10.png"); err == nil {
		t.Error("ParseVariant took a variant without WxH")
	}
}
