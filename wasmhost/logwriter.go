package wasmhost

import (
	"bytes"
	"context"
	"log/slog"
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

// maxLine bounds a buffered line: longer output is logged in pieces rather
// than held.
const maxLine = 4 << 10

func (w *logWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.buf = append(w.buf, p...)
			if len(w.buf) >= maxLine {
				w.flush()
			}
			break
		}
		w.buf = append(w.buf, p[:i]...)
		w.flush()
		p = p[i+1:]
	}
	return n, nil
}

func (w *logWriter) flush() {
	if len(w.buf) == 0 {
		return
	}
	log := w.in.m.rt.cfg.logger
	if log.Enabled(context.Background(), w.level) {
		attrs := append(w.in.logAttrs(), slog.String("stream", w.stream))
		log.LogAttrs(context.Background(), w.level, truncate(string(w.buf), maxLine), attrs...)
	}
	w.buf = w.buf[:0]
}
