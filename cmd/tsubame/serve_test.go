package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
)

// fakeServer records its Shutdown and fails it if told to.
type fakeServer struct {
	stopped bool
	stopErr error
}

func (s *fakeServer) Shutdown(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		return errors.New("shutdown without a deadline")
	}
	s.stopped = true
	return s.stopErr
}

// serve runs until SIGINT or the server's failure, then stops the server
// gracefully; the exit code says whether it failed, and a failed stop counts
// only for a daemon that loses work by it.
func TestServeStop(t *testing.T) {
	for _, tc := range []struct {
		name      string
		signal    bool // SIGINT, else the server fails
		stopErr   error
		stopExits bool
		want      int
	}{
		{"signal", true, nil, true, 0},
		{"signal, stop fails", true, errors.New("cut short"), false, 0},
		{"signal, stop fails, loses work", true, errors.New("lost LPs"), true, 1},
		{"failure", false, nil, false, 1},
		{"failure, stop fails", false, errors.New("cut short"), false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := &fakeServer{stopErr: tc.stopErr}
			failed := make(chan error, 1)
			var gotConfig string
			d := daemon{name: "fake", about: "a fake", configHelp: "`file`", failedStopExits: tc.stopExits,
				start: func(ctx context.Context, config string, logs logMaker, stdout io.Writer) (server, <-chan error, error) {
					gotConfig = config
					if !tc.signal {
						failed <- errors.New("listener broke")
					} else if err := signalSelf(); err != nil {
						return nil, nil, err
					}
					return srv, failed, nil
				}}
			var stderr bytes.Buffer
			code := serve(d, []string{"--config", "x.toml"}, io.Discard, &stderr)
			if tc.signal && strings.Contains(stderr.String(), errNoSignal.Error()) {
				t.Skip(stderr.String())
			}
			if code != tc.want {
				t.Errorf("exit %d, want %d; stderr %s", code, tc.want, stderr.String())
			}
			if gotConfig != "x.toml" || !srv.stopped {
				t.Errorf("config %q, stopped %v", gotConfig, srv.stopped)
			}
			if !tc.signal && !strings.Contains(stderr.String(), "listener broke") {
				t.Errorf("stderr %q does not log the failure", stderr.String())
			}
		})
	}
}

var errNoSignal = errors.New("cannot send this process SIGINT here")

// signalSelf sends this process SIGINT, which serve's signal.NotifyContext
// (set up before start runs) catches.
func signalSelf() error {
	p, err := os.FindProcess(os.Getpid())
	if err == nil {
		err = p.Signal(os.Interrupt)
	}
	if err != nil {
		return fmt.Errorf("%w: %v", errNoSignal, err)
	}
	return nil
}

// A start error exits 1 and names the command; bad flags exit 2 and start
// nothing.
func TestServeExitCodes(t *testing.T) {
	started := 0
	d := daemon{name: "fake", about: "a fake", configHelp: "`file`",
		start: func(ctx context.Context, config string, logs logMaker, stdout io.Writer) (server, <-chan error, error) {
			started++
			return nil, nil, errors.New("no such file")
		}}
	var stderr bytes.Buffer
	if code := serve(d, []string{"--config", "x.toml"}, io.Discard, &stderr); code != 1 || !strings.Contains(stderr.String(), "tsubame fake: no such file") {
		t.Errorf("start error: exit %d, stderr %q", code, stderr.String())
	}
	for _, args := range [][]string{nil, {"--config", "x.toml", "extra"}, {"--bogus"}} {
		if code := serve(d, args, io.Discard, io.Discard); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
	if started != 1 {
		t.Errorf("started %d times, want 1", started)
	}
}
