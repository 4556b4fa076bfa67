package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// servers are the client-facing listeners: TCP (HTTP/1.1, or HTTPS with
// HTTP/2) and, with a certificate, UDP for HTTP/3 at the same port.
type servers struct {
	ln  net.Listener
	tcp *http.Server
	udp net.PacketConn // nil without HTTP/3
	h3  *http3.Server
	tls bool // TCP speaks TLS
	// h3Active counts HTTP/3 requests being served: a graceful stop waits
	// for these, not for clients to close their connections.
	h3Active atomic.Int64
	wg       sync.WaitGroup
	errs     chan error
}

// portTries bounds the search for a port free on both TCP and UDP when the
// configured port is 0.
const portTries = 16

// listenHTTP opens the listeners and starts serving h. cert is the
// client-facing certificate (nil: plain HTTP/1.1 only). Each response must
// be written within writeTimeout of the start of its handler (h may extend
// that, as routes do once the request body is in).
func listenHTTP(c HTTPConfig, cert *tls.Config, writeTimeout time.Duration, h http.Handler, log *slog.Logger) (*servers, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &servers{errs: make(chan error, 2)}
	withH3 := cert != nil && c.HTTP3
	s.tls = cert != nil && c.TCP != "http"
	_, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return nil, fmt.Errorf("http listen %q: %w", c.Listen, err)
	}
	tries := 1
	if port == "0" && withH3 {
		tries = portTries
	}
	for i := 0; ; i++ {
		if s.ln, err = net.Listen("tcp", c.Listen); err != nil {
			return nil, listenError(c.Listen, err)
		}
		if !withH3 {
			break
		}
		udpAddr := s.ln.Addr().String()
		if s.udp, err = net.ListenPacket("udp", udpAddr); err == nil {
			break
		}
		s.ln.Close()
		if i+1 == tries {
			return nil, fmt.Errorf("http/3 listen udp %s: %w", udpAddr, listenError(udpAddr, err))
		}
	}

	var alt string
	if withH3 {
		// Alt-Svc tells clients HTTP/3 is at the same port over UDP.
		alt = `h3=":` + strconv.Itoa(s.ln.Addr().(*net.TCPAddr).Port) + `"; ma=86400`
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Every response must be written within writeTimeout; a route
		// restarts the count once the request body is in. The servers
		// have no WriteTimeout of their own, as net/http's counts from the
		// end of the headers and HTTP/2's resets the stream. An HTTP/2
		// write deadline resets its stream when it passes, even while the
		// body is still being read, so a request with a body gets one only
		// once the body is in (routes set it).
		if writeTimeout > 0 && (r.ProtoMajor != 2 || r.ContentLength == 0) {
			_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(writeTimeout))
		}
		if alt != "" && r.ProtoMajor < 3 {
			w.Header().Set("Alt-Svc", alt)
		}
		h.ServeHTTP(w, r)
	})
	s.tcp = &http.Server{
		Handler:           handler,
		MaxHeaderBytes:    c.MaxHeaderBytes,
		ReadHeaderTimeout: c.ReadHeaderTimeout,
		ReadTimeout:       c.ReadTimeout,
		IdleTimeout:       c.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	if !s.tls {
		s.tcp.ConnContext = framingContext
		s.tcp.Handler = closeAmbiguousFraming(handler)
	}
	s.serve(func() error {
		if s.tls {
			s.tcp.TLSConfig = cert.Clone()
			s.tcp.TLSConfig.NextProtos = []string{"h2", "http/1.1"}
			return s.tcp.ServeTLS(s.ln, "", "")
		}
		return s.tcp.Serve(framingListener{s.ln})
	})
	if withH3 {
		h3Handler := handler
		s.h3 = &http3.Server{
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s.h3Active.Add(1)
				defer s.h3Active.Add(-1)
				h3Handler.ServeHTTP(w, r)
			}),
			TLSConfig:      http3.ConfigureTLSConfig(cert.Clone()),
			MaxHeaderBytes: c.MaxHeaderBytes,
			IdleTimeout:    c.IdleTimeout,
			QUICConfig: &quic.Config{
				HandshakeIdleTimeout: c.ReadHeaderTimeout,
				MaxIdleTimeout:       c.IdleTimeout,
			},
			Logger: log,
		}
		s.serve(func() error { return s.h3.Serve(s.udp) })
	}
	return s, nil
}

func listenError(addr string, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("address %s is already in use: %w", addr, err)
	}
	return err
}

func (s *servers) serve(f func() error) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := f(); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, quic.ErrServerClosed) {
			s.errs <- err
		}
	}()
}

// addr is the TCP address (and, with HTTP/3, the UDP one).
func (s *servers) addr() string { return s.ln.Addr().String() }

// shutdown stops accepting and waits for in-flight requests until ctx ends.
func (s *servers) shutdown(ctx context.Context) error {
	var errs []error
	if s.h3 != nil {
		errs = append(errs, s.shutdownH3(ctx))
	}
	errs = append(errs, s.tcp.Shutdown(ctx))
	if s.udp != nil {
		errs = append(errs, s.udp.Close())
	}
	s.wg.Wait()
	return errors.Join(errs...)
}

// h3Poll is how often a stop checks whether HTTP/3 requests are still being
// served.
const h3Poll = 5 * time.Millisecond

// shutdownH3 sends GOAWAY and waits until no HTTP/3 request is in flight
// (or ctx ends), then closes every connection. http3.Server.Shutdown alone
// waits for clients to close their connections, which a client that went
// away without closing never does: the stop would last the whole grace
// period (and leave no time for leaving the cluster).
func (s *servers) shutdownH3(ctx context.Context) error {
	hctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.h3.Shutdown(hctx) }()
	t := time.NewTicker(h3Poll)
	defer t.Stop()
	for {
		select {
		case err := <-done:
			if errors.Is(err, context.Canceled) && ctx.Err() == nil {
				return nil // idle connections closed by us, not a timeout
			}
			return err
		case <-t.C:
			if s.h3Active.Load() == 0 {
				cancel()
			}
		}
	}
}
