package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/tsubame-rt/tsubame/abi"
	"github.com/tsubame-rt/tsubame/internal/adminapi"
)

// KV is an operator's access to buckets: kv.Store.
type KV interface {
	Get(ctx context.Context, bucket string, key []byte) ([]byte, bool, error)
	Set(ctx context.Context, bucket string, key, val []byte, ttl time.Duration) error
	Del(ctx context.Context, bucket string, key []byte) (bool, error)
	List(ctx context.Context, bucket, after string, limit int) ([]string, error)
}

// kvTime bounds one operator KV request.
const kvTime = 10 * time.Second

// handleKV serves POST /v1/kv/{bucket} (`tsubame kv`): get, set, del or ls
// on any bucket, with no grant check and no journal.
func (a *Server) handleKV(w http.ResponseWriter, r *http.Request) {
	if a.cfg.KV == nil {
		writeJSON(w, http.StatusNotFound, adminapi.Error{Error: "this node serves no KV"})
		return
	}
	bucket := r.PathValue("bucket")
	var req adminapi.KVRequest
	body := http.MaxBytesReader(w, r.Body, 2*abi.MaxKVValue+64<<10) // base64 of the largest value, and the rest
	if err := json.NewDecoder(body).Decode(&req); err != nil && err != io.EOF {
		writeJSON(w, http.StatusBadRequest, adminapi.Error{Error: "bad KV request: " + err.Error()})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), kvTime)
	defer cancel()
	var res adminapi.KVResponse
	var err error
	switch req.Op {
	case "get":
		res.Value, res.Found, err = a.cfg.KV.Get(ctx, bucket, req.Key)
	case "set":
		if req.TTLMillis < 0 || req.TTLMillis > abi.MaxKVTTLMilli {
			writeJSON(w, http.StatusBadRequest, adminapi.Error{Error: fmt.Sprintf("ttl_ms %d is outside 0 to %d", req.TTLMillis, abi.MaxKVTTLMilli)})
			return
		}
		err = a.cfg.KV.Set(ctx, bucket, req.Key, req.Value, time.Duration(req.TTLMillis)*time.Millisecond)
		res.Found = err == nil
	case "del":
		res.Found, err = a.cfg.KV.Del(ctx, bucket, req.Key)
	case "ls":
		limit := req.Limit
		if limit <= 0 {
			limit = adminapi.DefaultKVList
		}
		var keys []string
		keys, err = a.cfg.KV.List(ctx, bucket, string(req.After), limit)
		for _, k := range keys {
			res.Keys = append(res.Keys, []byte(k))
		}
	default:
		writeJSON(w, http.StatusBadRequest, adminapi.Error{Error: fmt.Sprintf("op %q is not get, set, del or ls", req.Op)})
		return
	}
	var bad interface{ HTTPStatus() int }
	switch {
	case errors.As(err, &bad):
		writeJSON(w, bad.HTTPStatus(), adminapi.Error{Error: err.Error()})
		return
	case err != nil:
		// The backend did not answer: the node is fine, its store is not.
		a.log.Warn("admin kv request failed", "bucket", bucket, "op", req.Op, "err", err)
		writeJSON(w, http.StatusBadGateway, adminapi.Error{Error: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, res)
}
