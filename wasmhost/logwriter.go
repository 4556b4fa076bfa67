package wasmhost

import (
	"bytes"
	"context"
	"log/slog"
	"unicode/utf8"
)

// logWriter sends a guest's WASI stdout or stderr to the runtime's logger,
// one record per line, tagged like the guest's own log calls. Each instance
// has its own pair, so lines of concurrent steps never interleave.
type logWriter struct {
	in     *instance
	stream string
	level  slog.Level
	buf    []byte
}

// maxLine bounds a buffered line: a longer one is logged in pieces of at
// most maxLine bytes, so a guest's output is never held whole.
const maxLine = 4 << 10

func (w *logWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		line, rest, eol := bytes.Cut(p, []byte{'\n'})
		for len(line) > 0 {
			k := min(len(line), maxLine-len(w.buf))
			w.buf = append(w.buf, line[:k]...)
			line = line[k:]
			if len(w.buf) == maxLine {
				w.piece()
			}
		}
		if !eol {
			break
		}
		w.flush()
		p = rest
	}
	return n, nil
}

// piece logs a full buffer as one piece of a long line, keeping back a rune
// cut at its end for the next piece.
func (w *logWriter) piece() {
	keep := 0
	for j := len(w.buf) - 1; j >= 0 && j > len(w.buf)-utf8.UTFMax; j-- {
		if utf8.RuneStart(w.buf[j]) {
			if !utf8.FullRune(w.buf[j:]) {
				keep = len(w.buf) - j
			}
			break
		}
	}
	cut := len(w.buf) - keep
	w.emit(w.buf[:cut])
	w.buf = append(w.buf[:0], w.buf[cut:]...)
}

// flush logs what is buffered: the end of a line, or output left when the
// instance closes.
func (w *logWriter) flush() {
	if len(w.buf) > 0 {
		w.emit(w.buf)
	}
	w.buf = w.buf[:0]
}

func (w *logWriter) emit(b []byte) {
	if w.in.m.rt.cfg.logger.Enabled(context.Background(), w.level) {
		w.in.guestLog(w.level, truncate(b, maxLine), append(w.in.logAttrs(), slog.String("stream", w.stream))...)
	}
}
