package adminapi

// KVRequest is the body of POST /v1/kv/{bucket} on a node's admin API
// (token-guarded): an operator's access to a bucket, with no grant check and
// no journal (docs/kv.md).
type KVRequest struct {
	// Op is "get", "set", "del" or "ls".
	Op    string `json:"op"`
	Key   []byte `json:"key,omitempty"`
	Value []byte `json:"value,omitempty"`
	// TTLMillis makes a set value expire; 0 keeps it.
	TTLMillis int64 `json:"ttl_ms,omitempty"`
	// After and Limit page ls: keys greater than After, at most Limit
	// (0: DefaultKVList).
	After []byte `json:"after,omitempty"`
	Limit int    `json:"limit,omitempty"`
}

// DefaultKVList is how many keys ls returns when the request sets no limit.
const DefaultKVList = 1000

// KVResponse answers a KVRequest. A missing key is Found false (get, del),
// not an error.
type KVResponse struct {
	Found bool     `json:"found"`
	Value []byte   `json:"value,omitempty"`
	Keys  [][]byte `json:"keys,omitempty"`
}

// BucketStatus is one bucket in a node's status: where it lives, who may
// use it, and whether its backend answered lately.
type BucketStatus struct {
	Name    string   `json:"name"`
	Backend string   `json:"backend"`
	Type    string   `json:"type"`
	Journal bool     `json:"journal"`
	Granted []string `json:"granted"`
	Private bool     `json:"private,omitempty"`
	Healthy bool     `json:"healthy"`
	Error   string   `json:"error,omitempty"`
}
