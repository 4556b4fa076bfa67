//go:build linux

package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	varint "encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/tsubame-rt/tsubame/internal/mesh/transport"
)

// statusKB reads a "Name:   N kB" line of /proc/PID/status.
func statusKB(t *testing.T, pid int, name string) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, name+":"); ok {
			n, err := strconv.Atoi(strings.Fields(rest)[0])
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", name, pid)
	return 0
}

// A peer holding a valid cluster certificate opens 32 streams to a node
// and sends a 16 MiB garbage LP frame on each at once. The node's peak RSS
// must grow by less than its frame memory budget for all connections
// (transport.DefaultFrameMemory), where it used to grow by 1-1.5 GB, and
// the node must keep serving.
func TestGarbageFramesStayWithinMemoryBudget(t *testing.T) {
	c := newChaosCluster(t, "node-1", "attacker")
	echo, _ := filepath.Abs("../testdata/echo.wasm")
	n := c.add("node-1", "127.0.0.1", map[string]string{"echo": echo})
	c.start(n)
	pid := n.p.cmd.Process.Pid
	poll(t, 30*time.Second, func() string {
		if members(c.client, n.p.field(t, "admin")) == "" {
			return "node-1 admin not answering"
		}
		return ""
	})
	before := statusKB(t, pid, "VmHWM")

	cert, err := tls.LoadX509KeyPair(filepath.Join(c.certs, "attacker.pem"), filepath.Join(c.certs, "attacker-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	caPEM, _ := os.ReadFile(filepath.Join(c.certs, "ca.pem"))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	qc, err := quic.DialAddr(ctx, n.p.field(t, "quic"), &tls.Config{
		Certificates: []tls.Certificate{cert}, RootCAs: pool, NextProtos: []string{transport.ALPN}, ServerName: "127.0.0.1",
	}, &quic.Config{HandshakeIdleTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer qc.CloseWithError(0, "")
	const streams, frame = 32, 16 << 20
	garbage := make([]byte, frame)
	rand.Read(garbage)
	msg := append(varint.AppendUvarint([]byte{1 /* LP */}, frame), garbage...)
	answers := make(chan string, streams)
	var wg sync.WaitGroup
	for range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := qc.OpenStreamSync(ctx)
			if err != nil {
				answers <- "open: " + err.Error()
				return
			}
			_ = s.SetDeadline(time.Now().Add(90 * time.Second))
			go func() { _, _ = s.Write(msg) }()
			br := bufio.NewReader(s)
			typ, err := br.ReadByte()
			if err != nil {
				answers <- "read: " + err.Error()
				return
			}
			l, _ := varint.ReadUvarint(br)
			body := make([]byte, min(l, 4096))
			_, _ = io.ReadFull(br, body)
			answers <- fmt.Sprintf("frame %d: %.60q", typ, body)
		}()
	}
	wg.Wait()
	close(answers)
	kinds := map[string]int{}
	for a := range answers {
		kinds[a[:min(len(a), 40)]]++
	}
	t.Logf("answers: %v", kinds)
	after := statusKB(t, pid, "VmHWM")
	grew := (after - before) << 10
	t.Logf("node-1 peak RSS %d MiB before, %d MiB after 32 x 16 MiB garbage frames (+%d MiB; budget %d MiB)",
		before>>10, after>>10, grew>>20, transport.DefaultFrameMemory>>20)
	if grew >= transport.DefaultFrameMemory {
		t.Errorf("peak RSS grew by %d MiB, over the frame memory budget of %d MiB", grew>>20, transport.DefaultFrameMemory>>20)
	}
	if members(c.client, n.p.field(t, "admin")) == "" {
		t.Error("node-1 stopped answering after the attack")
	}
}
