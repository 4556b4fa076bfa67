package transport

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/tsubame-rt/tsubame/internal/mesh/pki"
	"github.com/tsubame-rt/tsubame/lp"
)

// fuzzTransport is a receiving transport without sockets: answer runs on
// bytes as if a peer had written them on a stream.
func fuzzTransport() (*Transport, *conn) {
	t := &Transport{
		cfg: Config{MaxFrame: 1 << 20, Timeout: 1, Limits: lp.Limits{MaxTotal: 1 << 20},
			Handler: HandlerFunc(func(context.Context, string, *lp.Process) error { return nil }),
			Requests: RequestHandlerFunc(func(_ context.Context, _ string, k RequestKind, body []byte) ([]byte, error) {
				if k == RequestModule {
					return nil, &RequestError{Status: StatusNotFound, Msg: "no"}
				}
				return body, nil
			}),
		},
		log:  slog.New(slog.DiscardHandler),
		name: "fuzz",
		mem:  newBudget(4<<20, 2<<20),
	}
	return t, &conn{peer: "peer", role: pki.RoleNode}
}

// FuzzAnswer feeds a stream's bytes to the receiving side: frame headers,
// LP payloads and REQUEST payloads. Every request frame gets exactly one
// well-formed answer frame (ACK, REFUSE, ERROR or RESPONSE), and nothing
// panics; an ERROR ends the stream.
func FuzzAnswer(f *testing.F) {
	p := lp.New("gw", "echo", "say", []byte("hi"))
	enc, err := p.AppendBinary(nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(appendFrame(nil, frameLP, enc))
	f.Add(appendFrame(nil, frameRequest, append([]byte{byte(RequestInstall)}, `{"name":"x"}`...)))
	f.Add(appendFrame(nil, frameRequest, append([]byte{byte(RequestModule)}, make([]byte, 32)...)))
	f.Add(appendFrame(appendFrame(nil, frameLP, enc), frameRequest, []byte{byte(RequestComponents)}))
	f.Add([]byte{byte(frameLP), 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{byte(frameAck), 0})
	f.Add([]byte{byte(frameRequest), 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, c := fuzzTransport()
		r := bufio.NewReader(bytes.NewReader(b))
		for range 16 {
			if _, err := r.Peek(1); err != nil {
				break
			}
			out := tr.answer(context.Background(), c, r, nil)
			typ, n, err := readHeader(bufio.NewReader(bytes.NewReader(out)), len(out))
			if err != nil || n != len(out)-1-uvarintLen(n) {
				t.Fatalf("answer %x is not one well-formed frame: %v", out, err)
			}
			switch typ {
			case frameAck, frameRefuse, frameResponse:
			case frameError:
				return
			default:
				t.Fatalf("answer of type %s", typ)
			}
		}
		if tr.mem.avail != 4<<20 {
			t.Fatalf("frame memory not returned: %d left", tr.mem.avail)
		}
	})
}

func uvarintLen(n int) int { return len(binary.AppendUvarint(nil, uint64(n))) }

// FuzzParseAnswer: whatever a peer answers a REQUEST with, the sender gets
// an answer within its limit or an error, never a panic.
func FuzzParseAnswer(f *testing.F) {
	f.Add(byte(frameResponse), []byte{byte(StatusOK), 'o', 'k'}, 16)
	f.Add(byte(frameResponse), []byte{byte(StatusForbidden), 'n', 'o'}, 16)
	f.Add(byte(frameError), []byte{byte(ErrMemory)}, 16)
	f.Add(byte(frameAck), []byte{}, 0)
	f.Fuzz(func(t *testing.T, typ byte, payload []byte, maxResp int) {
		ans, _, err := parseAnswer("peer", frameType(typ), payload, maxResp)
		if err == nil && len(ans) > max(maxResp, 0) {
			t.Fatalf("answer of %d bytes over the limit %d", len(ans), maxResp)
		}
		var re *RequestError
		if errors.As(err, &re) && re.Status == StatusOK {
			t.Fatal("a RequestError with StatusOK")
		}
	})
}

// FuzzReadHeader: a header is read or refused without reading past it or
// exceeding the limit.
func FuzzReadHeader(f *testing.F) {
	f.Add([]byte{1, 5}, 10)
	f.Add([]byte{1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02}, 1<<20)
	f.Fuzz(func(t *testing.T, b []byte, limit int) {
		typ, n, err := readHeader(bufio.NewReader(bytes.NewReader(b)), limit)
		if err == nil && (n < 0 || n > limit) {
			t.Fatalf("header %x: length %d outside 0..%d (type %v)", b, n, limit, typ)
		}
		if err != nil && !errors.Is(err, io.EOF) {
			var we *wireError
			if !errors.As(err, &we) {
				t.Fatalf("header %x: %v is neither EOF nor a wire error", b, err)
			}
		}
	})
}
