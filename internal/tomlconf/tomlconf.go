// Package tomlconf is what the node's and the gateway's TOML configs share:
// strict decoding (every key of the file must land in a field), the line a
// key is on, one typed error (*Error: file:line: key: problem) for both, the
// cluster-facing keys every member has (Member, GossipKey, LPLimit: declared
// once, embedded in both configs, checked once), and the gossip key parser.
//
// It never reads a config file or fills defaults, and checks only the shared
// keys: each config keeps its own defaults and the validation of its own
// keys, reporting them as *Problem. CheckFiles only opens the files a loaded
// config names, to report every missing one at once.
package tomlconf

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// Unknown is a key of a document that the destination has no field for.
type Unknown struct {
	Key  string // dotted, quoted where TOML needs it: scheduler.polcy
	Line int    // 0 when not found
}

// Decode decodes data into v over what v already holds (its defaults). It
// returns toml's error unchanged when data does not parse or a value does not
// fit its field (Locate reads the line and key out of it), and otherwise
// every key of data that v has no field for, in file order. An unknown table
// is reported once, not again for each key in it.
func Decode(data []byte, v any) ([]Unknown, error) {
	md, err := toml.Decode(string(data), v)
	if err != nil {
		return nil, err
	}
	und := md.Undecoded()
	all := make(map[string]bool, len(und))
	for _, k := range und {
		all[k.String()] = true
	}
	var unknown []Unknown
	for _, k := range und {
		if len(k) > 1 && all[k[:len(k)-1].String()] {
			continue // its table is reported
		}
		unknown = append(unknown, Unknown{Key: k.String(), Line: KeyLine(data, strings.Join(k, "."), 0)})
	}
	return unknown, nil
}

// toml's type errors read `toml: line N (last key "k"): msg`.
var typeErr = regexp.MustCompile(`^toml: line (\d+) \(last key "([^"]*)"\): (.*)$`)

// Locate takes an error from Decode apart: the line (0 if toml did not say),
// the dotted key toml was at ("" if none) and the problem itself, without
// toml's prefix when the line and key could be read out of it.
func Locate(err error) (line int, key string, problem error) {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return pe.Position.Line, pe.LastKey, errors.New(pe.Message)
	}
	if m := typeErr.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		return line, m[2], errors.New(m[3])
	}
	return 0, "", err
}

// KeyLine returns the line (from 1) where key, dotted and unquoted
// ("components.my.mod" for `"my.mod" = ...` under [components]), is set or
// its table opened, or 0. With nth > 0 it returns the line of the nth
// [[key]] array table instead.
//
// A key set inside an inline table is found at the line that opens it; a
// table given only by dotted keys (`limits.max_depth = 9`) at its first key.
// BurntSushi/toml keeps key positions private, so this is a line scanner that
// only has to be right for a document that already parsed: it follows table
// headers, reads bare, quoted and dotted keys, and skips the body of a
// multi-line string.
func KeyLine(data []byte, key string, nth int) int {
	lines := strings.Split(string(data), "\n")
	table, seen := "", 0
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		if name, array, ok := header(line); ok {
			table = name
			if name == key {
				if nth == 0 {
					return i + 1
				}
				if array {
					if seen++; seen == nth {
						return i + 1
					}
				}
			}
			continue
		}
		name, rest, ok := parseKey(line)
		if !ok || !strings.HasPrefix(rest, "=") {
			continue
		}
		at := i + 1
		if q := openString(rest[1:]); q != "" {
			for i++; i < len(lines) && !strings.Contains(lines[i], q); i++ {
			}
		}
		if nth > 0 {
			continue
		}
		if table != "" {
			name = table + "." + name
		}
		if name == key || strings.HasPrefix(name, key+".") || strings.HasPrefix(key, name+".") {
			return at
		}
	}
	return 0
}

// header reads a [table] or [[array]] header line.
func header(line string) (name string, array, ok bool) {
	open, close := "[", "]"
	if strings.HasPrefix(line, "[[") {
		open, close, array = "[[", "]]", true
	}
	if !strings.HasPrefix(line, open) {
		return "", false, false
	}
	name, rest, ok := parseKey(line[len(open):])
	if !ok || !strings.HasPrefix(rest, close) {
		return "", false, false
	}
	rest = strings.TrimSpace(rest[len(close):])
	if rest != "" && rest[0] != '#' {
		return "", false, false // a value in a multi-line array, not a header
	}
	return name, array, true
}

// parseKey reads a key at the start of s: bare or quoted parts joined by dots,
// blanks around them. It returns the parts joined by "." and what follows.
func parseKey(s string) (key, rest string, ok bool) {
	var parts []string
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			return "", "", false
		}
		var part string
		switch s[0] {
		case '"':
			j := 1
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' {
					j++
				}
			}
			if j >= len(s) {
				return "", "", false
			}
			part = s[1:j]
			if u, err := strconv.Unquote(s[:j+1]); err == nil {
				part = u
			}
			s = s[j+1:]
		case '\'':
			j := strings.IndexByte(s[1:], '\'')
			if j < 0 {
				return "", "", false
			}
			part, s = s[1:1+j], s[j+2:]
		default:
			j := 0
			for j < len(s) && bare(s[j]) {
				j++
			}
			if j == 0 {
				return "", "", false
			}
			part, s = s[:j], s[j:]
		}
		parts = append(parts, part)
		s = strings.TrimLeft(s, " \t")
		if !strings.HasPrefix(s, ".") {
			return strings.Join(parts, "."), s, true
		}
		s = s[1:]
	}
}

func bare(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// openString returns the closing delimiter of a multi-line string that value
// starts and does not close on its line, or "".
func openString(value string) string {
	value = strings.TrimSpace(value)
	for _, q := range []string{`"""`, `'''`} {
		if strings.HasPrefix(value, q) && !strings.Contains(value[len(q):], q) {
			return q
		}
	}
	return ""
}

// SecretKey decodes a [membership] key: base64 of 16, 24 or 32 bytes (AES-128,
// -192 or -256, as memberlist wants), or "" for none.
func SecretKey(b64 string) ([]byte, error) {
	if b64 == "" {
		return nil, nil
	}
	k, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("not base64: %w", err)
	}
	if n := len(k); n != 16 && n != 24 && n != 32 {
		return nil, fmt.Errorf("%d bytes, want 16, 24 or 32", n)
	}
	return k, nil
}

// NamedFile is a file a config names, under its key ("tls.cert").
type NamedFile struct{ Key, Path string }

// CheckFiles reports at once every named file that cannot be opened for
// reading, each as "FILE:LINE: KEY: PATH: why", so an operator fixes a
// config in one pass rather than one start attempt per missing file. file
// and data are the config's name and bytes, for the lines; empty paths are
// skipped (the key is unset).
func CheckFiles(file string, data []byte, files []NamedFile) error {
	var errs []error
	for _, f := range files {
		if f.Path == "" {
			continue
		}
		fh, err := os.Open(f.Path)
		if err == nil {
			st, serr := fh.Stat()
			fh.Close()
			if serr == nil && st.IsDir() {
				err = errors.New("is a directory, not a file")
			} else {
				continue
			}
		} else if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
			err = pe.Err
		}
		where := file
		if line := KeyLine(data, f.Key, 0); line > 0 {
			where = fmt.Sprintf("%s:%d", file, line)
		}
		errs = append(errs, fmt.Errorf("%s: %s: %s: %w", where, f.Key, f.Path, err))
	}
	return errors.Join(errs...)
}
