package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/tsubame-rt/tsubame/internal/mesh/pki"
	"github.com/tsubame-rt/tsubame/internal/mesh/transport"
	"github.com/tsubame-rt/tsubame/lp"
)

func TestNewChecksIdentity(t *testing.T) {
	c := DefaultConfig()
	c.HTTP.Listen = "127.0.0.1:0"
	c.Routes = []Route{helloRoute}
	if _, err := New(context.Background(), c, Options{}); err == nil || !strings.Contains(err.Error(), "[tls]") {
		t.Errorf("no TLS: error %v, want one naming [tls]", err)
	}
	ca, err := pki.NewCA("test-ca")
	if err != nil {
		t.Fatal(err)
	}
	tlsConf, err := ca.IssueTLS("gw-1")
	if err != nil {
		t.Fatal(err)
	}
	c.Name = "gw-2"
	if _, err := New(context.Background(), c, Options{ClusterTLS: tlsConf}); err == nil || !strings.Contains(err.Error(), `"gw-1"`) {
		t.Errorf("name mismatch: error %v, want one naming the certificate's gw-1", err)
	}
}

// A gateway takes back LPs up to its limits.max_lp_bytes, as a node does:
// its transport decodes under that limit and reads frames up to it plus
// transport.FrameSlack, below or above the 16 MiB default.
func TestMaxLPBytesReachesTransport(t *testing.T) {
	ca, err := pki.NewCA("test-ca")
	if err != nil {
		t.Fatal(err)
	}
	issue := func(name string) *tls.Config {
		c, err := ca.IssueTLS(name)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	quiet := slog.New(slog.DiscardHandler)
	gwTLS := issue("gw")
	start := func(maxLP int) *Gateway {
		c := DefaultConfig()
		c.HTTP.Listen = "127.0.0.1:0"
		c.Routes = []Route{helloRoute}
		c.Limits.MaxLPBytes = maxLP
		g, err := New(context.Background(), c, Options{ClusterTLS: gwTLS, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = g.Shutdown(ctx)
		})
		return g
	}
	// A peer's transport that may send up to 32 MiB, given time for it
	// under -race.
	peer, err := transport.Listen(context.Background(), transport.Config{Listen: "127.0.0.1:0", TLS: issue("peer"), Logger: quiet, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	// send offers g an unfinished LP of n input bytes, in entries of 1 MiB
	// at most, and returns the gateway's answer.
	send := func(g *Gateway, n int) error {
		t.Helper()
		const chunk = 1 << 20
		p := lp.New("elsewhere", "c", "k", make([]byte, min(n, chunk)))
		for n -= chunk; n > 0; n -= chunk {
			if err := p.Call("c", "k", make([]byte, min(n, chunk)), nil, lp.Limits{}); err != nil {
				t.Fatal(err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		return peer.Send(ctx, g.QUICAddr(), p)
	}
	tooLarge := func(err error, limit int) bool {
		var pe *transport.ProtocolError
		return errors.As(err, &pe) && pe.Code == transport.ErrFrameTooLarge && strings.Contains(pe.Msg, fmt.Sprintf("limit of %d", limit))
	}
	// A gateway's refusal (it takes only finished LPs it sent) means the
	// LP was read and decoded.
	decoded := func(err error) bool {
		var ref *transport.Refusal
		return errors.As(err, &ref)
	}

	small := start(2 << 20)
	if err := send(small, 2<<20-4<<10); !decoded(err) {
		t.Errorf("LP under max_lp_bytes: %v, want the gateway's refusal", err)
	}
	if err := send(small, 2<<20+32<<10); !tooLarge(err, 2<<20) {
		t.Errorf("LP over max_lp_bytes, within the frame limit: %v, want frame too large naming %d", err, 2<<20)
	}
	if err := send(small, 3<<20); !tooLarge(err, 2<<20+transport.FrameSlack) {
		t.Errorf("LP over the frame limit: %v, want frame too large naming %d", err, 2<<20+transport.FrameSlack)
	}
	big := start(20 << 20)
	if err := send(big, 17<<20); !decoded(err) {
		t.Errorf("17 MiB LP with max_lp_bytes 20 MiB: %v, want the gateway's refusal", err)
	}
}
