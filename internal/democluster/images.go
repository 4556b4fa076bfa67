package democluster

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/tsubame-rt/tsubame"
	"github.com/tsubame-rt/tsubame/gateway"
	"github.com/tsubame-rt/tsubame/internal/imgsamples"
	"github.com/tsubame-rt/tsubame/node"
)

// The image service (docs/images.md): img-front validates and routes,
// img-cache answers variants from its KV bucket, img-convert renders them,
// img-storage keeps the originals.
var imageComponents = []string{"img-front", "img-cache", "img-convert", "img-storage"}

// ImagesApp serves PUT /img/NAME, GET /img/NAME?w=&h=&fmt= and the gallery
// GET /img/.
func ImagesApp() *App {
	route := func(method, path string) gateway.Route {
		return gateway.Route{Method: method, Path: path, Component: "img-front", Kind: "http",
			Input: "request", Output: "response"}
	}
	return &App{
		Modules: map[string][]byte{
			"img-front": tsubame.ImgFront, "img-cache": tsubame.ImgCache,
			"img-convert": tsubame.ImgConvert, "img-storage": tsubame.ImgStorage,
		},
		Placement: ImagesPlacement,
		Routes: []gateway.Route{
			route("PUT", "/img/{name}"), route("GET", "/img/{name}"), route("GET", "/img/{$}"),
		},
		// Uploads up to 2 MiB reach img-front, which names the 1 MiB limit.
		Gateway: func(c *gateway.Config) {
			c.HTTP.MaxBodyBytes = 2 << 20
			c.Dispatch.AttemptTimeout = 40 * time.Second
		},
		// Decoding and scaling a 1 MiB photo in a wasm guest takes about a
		// second on an idle core, many on a loaded machine: give a step 30.
		Node: func(c *node.Config) { c.Limits.StepTimeout = 30 * time.Second },
	}
}

// ImagesPlacement deals the four components round the nodes, so that on
// three nodes a GET that misses the cache runs on all three (front and
// storage on node-1, cache on node-2, convert on node-3); with more nodes
// than components, the extra nodes hold one each again.
func ImagesPlacement(i, n int) []string {
	if n > len(imageComponents) {
		return []string{imageComponents[i%len(imageComponents)]}
	}
	var out []string
	for j, c := range imageComponents {
		if j%n == i {
			out = append(out, c)
		}
	}
	return out
}

// UploadSamples PUTs the sample images (internal/imgsamples) to the image
// service at base (the gateway's URL).
func UploadSamples(ctx context.Context, base string) error {
	for _, s := range imgsamples.All() {
		req, err := http.NewRequestWithContext(ctx, "PUT", base+"/img/"+s.Name, bytes.NewReader(s.Data))
		if err != nil {
			return err
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusCreated {
			return fmt.Errorf("PUT /img/%s: %s: %s", s.Name, res.Status, bytes.TrimSpace(body))
		}
	}
	return nil
}
