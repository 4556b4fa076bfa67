package democluster

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/tsubame-rt/tsubame/internal/imgsamples"
	"github.com/tsubame-rt/tsubame/node"
)

// BenchmarkImageBytes measures the bytes that cross between members for one
// upload and for one GET that misses the cache, with the 1 MiB sample
// original, on four nodes (one component each, the gateway inside node-1
// with img-front), eager (blobs.threshold above every value: everything
// inline, as before blobs) and by reference (the default). The bytes are the
// encoded LPs the nodes sent plus the blob bytes they handed on or served.
// The reported ratio is against the bytes a step must read on a node other
// than the one holding them: the original, once, for a PUT (storage) and for
// a miss (convert).
//
//	go test -run '^$' -bench ImageBytes -benchtime 5x ./internal/democluster
func BenchmarkImageBytes(b *testing.B) {
	large := imgsamples.Large()
	for _, mode := range []struct {
		name      string
		threshold int
	}{{"eager", 1 << 30}, {"ref", 0}} {
		b.Run(mode.name, func(b *testing.B) {
			app := ImagesApp()
			setNode := app.Node
			app.Node = func(c *node.Config) {
				setNode(c)
				if mode.threshold > 0 {
					c.Blobs.Threshold = mode.threshold
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			d, err := Start(ctx, Config{Nodes: 4, HTTP: "127.0.0.1:0", App: app, Embed: true, Workers: 2})
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			moved := func() int64 {
				var sum int64
				for _, n := range d.Nodes {
					st := n.Blobs().Stats()
					sum += n.SentLPBytes() + st.PushedBytes + st.ServedBytes
				}
				return sum
			}
			send := func(method, url string, body []byte, want int) {
				req, _ := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				msg, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != want {
					b.Fatalf("%s %s: %s: %s", method, url, res.Status, msg)
				}
			}
			base := d.URL() + "/img/"
			b.ResetTimer()
			before := moved()
			for i := range b.N {
				send("PUT", fmt.Sprintf("%slarge-%d.jpg", base, i), large, http.StatusCreated)
			}
			put := float64(moved()-before) / float64(b.N)
			before = moved()
			for i := range b.N {
				send("GET", fmt.Sprintf("%slarge-0.jpg?w=%d&fmt=jpeg", base, 100+i), nil, http.StatusOK)
			}
			miss := float64(moved()-before) / float64(b.N)
			b.ReportMetric(put, "B/put")
			b.ReportMetric(put/float64(len(large)), "put/original")
			b.ReportMetric(miss, "B/miss")
			b.ReportMetric(miss/float64(len(large)), "miss/original")
		})
	}
}
