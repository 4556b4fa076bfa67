package obs

import (
	"fmt"
	"github.com/tsubame-rt/tsubame/internal/tomlconf"
	"io"
	"log/slog"
	"os"
	"strings"
)

// LogConfig is the [log] section of a node's or gateway's TOML.
type LogConfig struct {
	// Level is "debug", "info" (the default), "warn" or "error". Info logs
	// one line per notable event (a member joining or failing, an install,
	// an LP dropped, a step failing), never one per step.
	Level string `toml:"level"`
	// Format is "auto" (the default: text on a terminal, JSON otherwise),
	// "text" or "json".
	Format string `toml:"format"`
}

// Validate names the first bad field.
func (c LogConfig) Validate() error {
	if _, err := parseLevel(c.Level); err != nil {
		return err
	}
	switch c.Format {
	case "", "auto", "text", "json":
		return nil
	}
	return &tomlconf.Problem{Key: "log.format", Err: fmt.Errorf("%q is not auto, text or json", c.Format)}
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "", "info":
		return slog.LevelInfo, nil
	case "debug":
		return slog.LevelDebug, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, &tomlconf.Problem{Key: "log.level", Err: fmt.Errorf("%q is not debug, info, warn or error", s)}
}

// NewLogger returns the logger of a node, gateway or demo writing to w as c
// says; debug (the -v flag) lowers the level to debug whatever c says.
func NewLogger(w io.Writer, c LogConfig, debug bool) (*slog.Logger, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	level, _ := parseLevel(c.Level)
	if debug {
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level}
	json := c.Format == "json" || (c.Format != "text" && !IsTerminal(w))
	if json {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}

// IsTerminal reports whether w is a character device (a terminal).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
