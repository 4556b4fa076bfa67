package kv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tsubame-rt/tsubame/abi"
	"github.com/tsubame-rt/tsubame/wasmhost"
)

// RedisBackend keeps buckets in a Redis (7.x) shared by every node, through
// go-redis. Keys are laid out so that one bucket's values and journal records
// share a Redis Cluster hash slot ({bucket}): an operation and its journal
// record are written by one Lua script, atomically, on any deployment.
//
//	tsubame:kv:{BUCKET}:KEY          a value
//	tsubame:kj:{BUCKET}:STEP#SEQ     a journal record (a hash: f s v i found)
type RedisBackend struct {
	c redis.UniversalClient
}

// redisOptions turns a backend's config into go-redis options.
func redisOptions(bc BackendConfig) (*redis.UniversalOptions, error) {
	if bc.URL == "" {
		return nil, errors.New("url: missing (redis://host:port/db or rediss:// for TLS)")
	}
	if !strings.HasPrefix(bc.URL, "redis://") && !strings.HasPrefix(bc.URL, "rediss://") {
		return nil, fmt.Errorf("url: %q is not a redis:// or rediss:// URL", redactURL(bc.URL))
	}
	u := &redis.UniversalOptions{}
	switch bc.Mode {
	case "", "single":
		o, err := redis.ParseURL(bc.URL)
		if err != nil {
			return nil, fmt.Errorf("url: %v", err)
		}
		u.Addrs, u.Username, u.Password, u.DB, u.TLSConfig = []string{o.Addr}, o.Username, o.Password, o.DB, o.TLSConfig
	case "cluster":
		o, err := redis.ParseClusterURL(bc.URL)
		if err != nil {
			return nil, fmt.Errorf("url: %v", err)
		}
		u.Addrs, u.Username, u.Password, u.TLSConfig, u.IsClusterMode = o.Addrs, o.Username, o.Password, o.TLSConfig, true
	case "sentinel":
		o, err := redis.ParseFailoverURL(bc.URL)
		if err != nil {
			return nil, fmt.Errorf("url: %v", err)
		}
		if o.MasterName == "" {
			return nil, errors.New("url: sentinel mode needs master_name=NAME")
		}
		u.Addrs, u.MasterName, u.Username, u.Password, u.DB, u.TLSConfig = o.SentinelAddrs, o.MasterName, o.Username, o.Password, o.DB, o.TLSConfig
		u.SentinelUsername, u.SentinelPassword = o.SentinelUsername, o.SentinelPassword
	default:
		return nil, fmt.Errorf("mode: %q is not \"single\", \"cluster\" or \"sentinel\"", bc.Mode)
	}
	if bc.TLSCA != "" {
		if u.TLSConfig == nil {
			return nil, errors.New("tls_ca: set, but the URL is not rediss://")
		}
		pem, err := os.ReadFile(bc.TLSCA)
		if err != nil {
			return nil, fmt.Errorf("tls_ca: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls_ca: no PEM certificates in %s", bc.TLSCA)
		}
		u.TLSConfig = u.TLSConfig.Clone()
		u.TLSConfig.RootCAs = pool
		if u.TLSConfig.MinVersion == 0 {
			u.TLSConfig.MinVersion = tls.VersionTLS12
		}
	}
	timeout := bc.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	u.DialTimeout, u.ReadTimeout, u.WriteTimeout = timeout, timeout, timeout
	u.ContextTimeoutEnabled = true // a step's deadline bounds its operation
	// No retries: a retried INCRBY whose first reply was lost would apply
	// twice on a bucket without a journal. A failed operation answers
	// abi.KVUnavailable and the step decides.
	u.MaxRetries = -1
	u.DialerRetries = 1 // a step cannot wait for five dials; Ping notices the return
	u.PoolSize = bc.PoolSize
	if u.PoolSize == 0 {
		u.PoolSize = 10 * runtime.GOMAXPROCS(0)
	}
	return u, nil
}

// clientLog takes go-redis's own log lines (dial failures, pool notes),
// which would otherwise go to stderr on every failed operation; the Store
// logs a backend's health changes once each.
type clientLog struct{}

func (clientLog) Printf(ctx context.Context, format string, v ...any) {
	slog.Debug("redis client: " + fmt.Sprintf(format, v...))
}

func init() { redis.SetLogger(clientLog{}) }

// redactURL hides a password in a URL for error messages.
func redactURL(s string) string {
	if at := strings.LastIndex(s, "@"); at >= 0 {
		if scheme := strings.Index(s, "://"); scheme >= 0 && scheme < at {
			return s[:scheme+3] + "…@" + s[at+1:]
		}
	}
	return s
}

// NewRedis connects to the Redis of bc. It does not wait for Redis to
// answer: a backend that is down answers abi.KVUnavailable until it is up.
func NewRedis(bc BackendConfig) (*RedisBackend, error) {
	o, err := redisOptions(bc)
	if err != nil {
		return nil, err
	}
	return &RedisBackend{c: redis.NewUniversalClient(o)}, nil
}

func dataKey(bucket string, key []byte) string {
	return "tsubame:kv:{" + bucket + "}:" + string(key)
}

func dataPrefix(bucket string) string { return "tsubame:kv:{" + bucket + "}:" }

func journalKey(bucket, j string) string { return "tsubame:kj:{" + bucket + "}:" + j }

// opScript applies one operation and, when KEYS[2] is given, journals it
// atomically. ARGV: kind, fingerprint, journal ttl ms, value, expect,
// expect-absent, delta, ttl ms. It returns {replayed, fingerprint, status,
// value, int, found}. INCRBY's result is re-read with GET: Lua numbers are
// doubles and would round counters above 2^53.
var opScript = redis.NewScript(`
local jk = KEYS[2]
if jk then
  local rec = redis.call('HMGET', jk, 'f', 's', 'v', 'i', 'found')
  if rec[1] then return {1, rec[1], tonumber(rec[2]), rec[3], rec[4], rec[5]} end
end
local k, op, ttl = KEYS[1], ARGV[1], tonumber(ARGV[8])
local status, val, int, found = 0, '', '0', '0'
local function store(v)
  if ttl > 0 then redis.call('SET', k, v, 'PX', ttl) else redis.call('SET', k, v) end
end
if op == 'get' then
  local v = redis.call('GET', k)
  if v then val = v; found = '1' else status = 1 end
elseif op == 'set' then
  store(ARGV[4])
elseif op == 'del' then
  if redis.call('DEL', k) == 0 then status = 1 end
elseif op == 'add' then
  local r = redis.pcall('INCRBY', k, ARGV[7])
  if type(r) == 'table' and r.err then status = 6 else int = redis.call('GET', k) end
elseif op == 'cas' then
  local cur = redis.call('GET', k)
  local ok
  if ARGV[6] == '1' then ok = (cur == false) else ok = (cur == ARGV[5]) end
  if ok then store(ARGV[4]) else
    status = 5
    if cur then val = cur; found = '1' end
  end
end
if jk then
  redis.call('HSET', jk, 'f', ARGV[2], 's', status, 'v', val, 'i', int, 'found', found)
  redis.call('PEXPIRE', jk, ARGV[3])
end
return {0, ARGV[2], status, val, int, found}
`)

// Apply implements Backend. A bucket with a journal, and every
// compare-and-set, goes through opScript (one round trip); the other
// operations of a bucket without a journal are single commands.
func (r *RedisBackend) Apply(ctx context.Context, bucket string, op *wasmhost.KVOp, j *Journal) wasmhost.KVResult {
	k := dataKey(bucket, op.Key)
	if j == nil && op.Kind != wasmhost.KVCAS {
		return r.plain(ctx, k, op)
	}
	keys := []string{k}
	jttl, print := int64(0), ""
	if j != nil {
		keys = append(keys, journalKey(bucket, j.Key()))
		jttl = max(time.Until(j.Expires).Milliseconds(), 1)
		print = strconv.FormatUint(j.Print, 16)
	}
	absent := "0"
	if op.ExpectAbsent {
		absent = "1"
	}
	res, err := opScript.Run(ctx, r.c, keys, op.Kind.String(), print, jttl, op.Value, op.Expect, absent,
		op.Delta, op.TTL.Milliseconds()).Slice()
	if err != nil {
		return unavailable(err)
	}
	if len(res) != 6 {
		return unavailable(fmt.Errorf("opScript answered %d values, want 6", len(res)))
	}
	if res[0].(int64) == 1 && res[1].(string) != print {
		return wasmhost.KVResult{Status: abi.KVInvalid, Err: replayError(op, j)}
	}
	out := wasmhost.KVResult{Status: int(res[2].(int64))}
	val, _ := res[3].(string)
	out.Found = res[5].(string) == "1"
	if out.Found {
		out.Value = []byte(val)
	}
	if op.Kind == wasmhost.KVAdd && out.Status == abi.KVOK {
		n, err := strconv.ParseInt(res[4].(string), 10, 64)
		if err != nil {
			return wasmhost.KVResult{Status: abi.KVNotInteger}
		}
		out.Int = n
	}
	return out
}

// plain applies an operation of a bucket without a journal.
func (r *RedisBackend) plain(ctx context.Context, k string, op *wasmhost.KVOp) wasmhost.KVResult {
	switch op.Kind {
	case wasmhost.KVGet:
		v, err := r.c.Get(ctx, k).Bytes()
		if errors.Is(err, redis.Nil) {
			return wasmhost.KVResult{Status: abi.KVNotFound}
		}
		if err != nil {
			return unavailable(err)
		}
		return wasmhost.KVResult{Value: v, Found: true}
	case wasmhost.KVSet:
		if err := r.c.Set(ctx, k, op.Value, op.TTL).Err(); err != nil {
			return unavailable(err)
		}
		return wasmhost.KVResult{}
	case wasmhost.KVDel:
		n, err := r.c.Del(ctx, k).Result()
		if err != nil {
			return unavailable(err)
		}
		if n == 0 {
			return wasmhost.KVResult{Status: abi.KVNotFound}
		}
		return wasmhost.KVResult{}
	case wasmhost.KVAdd:
		n, err := r.c.IncrBy(ctx, k, op.Delta).Result()
		var rerr redis.Error
		if errors.As(err, &rerr) {
			return wasmhost.KVResult{Status: abi.KVNotInteger}
		}
		if err != nil {
			return unavailable(err)
		}
		return wasmhost.KVResult{Int: n}
	}
	return wasmhost.KVResult{Status: abi.KVInvalid}
}

func unavailable(err error) wasmhost.KVResult {
	return wasmhost.KVResult{Status: abi.KVUnavailable, Err: err}
}

// List implements Backend with SCAN over the bucket's prefix: keys come in
// no particular order, and after is only honoured as a filter (keys not
// greater are skipped).
func (r *RedisBackend) List(ctx context.Context, bucket, after string, limit int) ([]string, error) {
	prefix := dataPrefix(bucket)
	var out []string
	var cursor uint64
	for {
		keys, next, err := r.c.Scan(ctx, cursor, escapeGlob(prefix)+"*", 512).Result()
		if err != nil {
			return nil, fmt.Errorf("scan %s: %w", bucket, err)
		}
		for _, k := range keys {
			if k = strings.TrimPrefix(k, prefix); k > after {
				out = append(out, k)
			}
			if limit > 0 && len(out) >= limit {
				return out, nil
			}
		}
		if cursor = next; cursor == 0 {
			return out, nil
		}
	}
}

// escapeGlob escapes the glob characters of s for SCAN MATCH.
func escapeGlob(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Ping implements Backend.
func (r *RedisBackend) Ping(ctx context.Context) error { return r.c.Ping(ctx).Err() }

// Type implements Backend.
func (r *RedisBackend) Type() string { return Redis }

// Close implements Backend.
func (r *RedisBackend) Close() error { return r.c.Close() }

var _ Backend = (*RedisBackend)(nil)
