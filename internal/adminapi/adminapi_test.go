package adminapi

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestToken(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "token")
	const secret = "0123456789abcdef0123"
	if err := os.WriteFile(path, []byte("  "+secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tok, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		header string
		want   error
	}{
		{"Bearer " + secret, nil},
		{"", ErrMissing},
		{"Basic " + secret, ErrMissing},
		{"Bearer ", ErrMissing},
		{"Bearer " + secret + "x", ErrWrong},
		{"Bearer " + secret[:10], ErrWrong},
	} {
		r, _ := http.NewRequest("GET", "/", nil)
		if tc.header != "" {
			r.Header.Set("Authorization", tc.header)
		}
		if err := tok.Check(r); !errors.Is(err, tc.want) {
			t.Errorf("%q: %v, want %v", tc.header, err, tc.want)
		}
	}
	for body, want := range map[string]string{"short": "want at least 16", "two words here, long enough": "one line"} {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Read(path); err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), body) {
			t.Errorf("token %q: %v, want an error mentioning %q and not the token", body, err, want)
		}
	}
	if _, err := Read(filepath.Join(dir, "none")); err == nil {
		t.Error("missing file accepted")
	}
}
