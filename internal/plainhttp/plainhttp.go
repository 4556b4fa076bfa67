// Package plainhttp serves one component's kind over plain HTTP, run to
// completion in this process by node/engine: no cluster, no LP migration,
// no QUIC. It is `tsubame exec --http`, and the baseline server the
// evaluation harness puts behind nginx: the same wasm, without Tsubame's
// distribution.
//
// It never retries and never keeps state between requests.
package plainhttp

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/tsubame-rt/tsubame/abi"
	"github.com/tsubame-rt/tsubame/lp"
	"github.com/tsubame-rt/tsubame/node/engine"
)

// Handler answers every request with target's kind run on the request's
// body (at most lp.DefaultLimits.MaxBytes): 200 and the reply; the
// component's failure code when it is an HTTP one (400 to 599), else 500,
// with the failure's message; 413 for a body over the limit.
func Handler(eng *engine.Engine, target, kind string, timeout time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		max := lp.DefaultLimits.MaxBytes
		in, err := io.ReadAll(io.LimitReader(r.Body, int64(max)+1))
		if err != nil {
			http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
			return
		}
		if len(in) > max {
			http.Error(w, fmt.Sprintf("body over %d bytes", max), http.StatusRequestEntityTooLarge)
			return
		}
		p := lp.New("plainhttp", target, kind, in)
		p.Deadline = time.Now().Add(timeout).UnixNano()
		if err := eng.Run(r.Context(), p); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		root := p.Root()
		if root.State == lp.StateFailed {
			code := http.StatusInternalServerError
			if root.ErrCode >= 400 && root.ErrCode <= 599 {
				code = int(root.ErrCode)
			}
			w.Header().Set("Tsubame-Code", strconv.FormatUint(uint64(root.ErrCode), 10))
			http.Error(w, fmt.Sprintf("%s/%s failed: code %d (%s): %s", target, kind, root.ErrCode, abi.CodeName(root.ErrCode), root.ErrMsg), code)
			return
		}
		w.Write(root.Output)
	})
}
