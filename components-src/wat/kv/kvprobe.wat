;; kvprobe: runs the KV operations its input lists, in one step, and replies
;; with what each returned, so tests can check every kv_* function's exact
;; result. The input is a sequence of records; each is a header of eight
;; little-endian u32s, then the bucket, key, value and expected bytes:
;;    0 op: 1 kv_get, 2 kv_set, 3 kv_del, 4 kv_add, 5 kv_cas, 6 kv_value
;;    4 bucket length   8 key length   12 value length
;;   16 expected length (0xFFFFFFFF: kv_cas expects the key absent)
;;   20 ttl_ms (set, cas)   24 delta (add, an i32)   28 cap (get, value)
;; The reply has one record per operation: the i32 the function returned,
;; then a u32 n and n bytes: what the host wrote (get and value: min(ret,
;; cap) bytes; add: the 8-byte sum when ret is 0).
;; Build: wat2wasm components-src/wat/kv/kvprobe.wat -o testdata/kvprobe.wasm
(module
  (import "tsubame" "input" (func $input (param i32 i32) (result i32)))
  (import "tsubame" "reply" (func $reply (param i32 i32)))
  (import "tsubame" "kv_get" (func $get (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "tsubame" "kv_value" (func $value (param i32 i32) (result i32)))
  (import "tsubame" "kv_set" (func $set (param i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "tsubame" "kv_del" (func $del (param i32 i32 i32 i32) (result i32)))
  (import "tsubame" "kv_add" (func $add (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "tsubame" "kv_cas" (func $cas (param i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  ;; 40 pages: the input at 64 KiB (up to 1.2 MiB), the reply from 1.25 MiB.
  (memory (export "memory") 40)
  (func (export "tsubame_abi_version") (result i32) (i32.const 1))
  (func (export "tsubame_step")
    (local $end i32) (local $p i32) (local $o i32) (local $op i32)
    (local $b i32) (local $k i32) (local $v i32) (local $e i32)
    (local $bl i32) (local $kl i32) (local $vl i32) (local $el i32)
    (local $cap i32) (local $ret i32) (local $n i32)
    (local.set $end (i32.add (i32.const 65536)
      (call $input (i32.const 65536) (i32.const 1245184))))
    (local.set $p (i32.const 65536))
    (local.set $o (i32.const 1310720))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $op (i32.load (local.get $p)))
        (local.set $bl (i32.load offset=4 (local.get $p)))
        (local.set $kl (i32.load offset=8 (local.get $p)))
        (local.set $vl (i32.load offset=12 (local.get $p)))
        (local.set $el (i32.load offset=16 (local.get $p)))
        (local.set $cap (i32.load offset=28 (local.get $p)))
        (local.set $b (i32.add (local.get $p) (i32.const 32)))
        (local.set $k (i32.add (local.get $b) (local.get $bl)))
        (local.set $v (i32.add (local.get $k) (local.get $kl)))
        (local.set $e (i32.add (local.get $v) (local.get $vl)))
        (local.set $n (i32.const 0))
        (if (i32.eq (local.get $op) (i32.const 1))
          (then
            (local.set $ret (call $get (local.get $b) (local.get $bl) (local.get $k) (local.get $kl)
              (i32.add (local.get $o) (i32.const 8)) (local.get $cap)))))
        (if (i32.eq (local.get $op) (i32.const 2))
          (then
            (local.set $ret (call $set (local.get $b) (local.get $bl) (local.get $k) (local.get $kl)
              (local.get $v) (local.get $vl) (i32.load offset=20 (local.get $p))))))
        (if (i32.eq (local.get $op) (i32.const 3))
          (then
            (local.set $ret (call $del (local.get $b) (local.get $bl) (local.get $k) (local.get $kl)))))
        (if (i32.eq (local.get $op) (i32.const 4))
          (then
            (local.set $ret (call $add (local.get $b) (local.get $bl) (local.get $k) (local.get $kl)
              (i32.load offset=24 (local.get $p)) (i32.add (local.get $o) (i32.const 8))))
            (if (i32.eqz (local.get $ret)) (then (local.set $n (i32.const 8))))))
        (if (i32.eq (local.get $op) (i32.const 5))
          (then
            (local.set $ret (call $cas (local.get $b) (local.get $bl) (local.get $k) (local.get $kl)
              (local.get $e) (local.get $el) (local.get $v) (local.get $vl)
              (i32.load offset=20 (local.get $p))))))
        (if (i32.eq (local.get $op) (i32.const 6))
          (then
            (local.set $ret (call $value (i32.add (local.get $o) (i32.const 8)) (local.get $cap)))))
        ;; get and value wrote min(ret, cap) bytes when ret >= 0
        (if (i32.and (i32.ge_s (local.get $ret) (i32.const 0))
                     (i32.or (i32.eq (local.get $op) (i32.const 1)) (i32.eq (local.get $op) (i32.const 6))))
          (then
            (local.set $n (select (local.get $ret) (local.get $cap)
              (i32.lt_u (local.get $ret) (local.get $cap))))))
        (i32.store (local.get $o) (local.get $ret))
        (i32.store offset=4 (local.get $o) (local.get $n))
        (local.set $o (i32.add (local.get $o) (i32.add (i32.const 8) (local.get $n))))
        ;; the next record: an absent expectation has no bytes
        (local.set $p (i32.add (local.get $e)
          (select (i32.const 0) (local.get $el) (i32.eq (local.get $el) (i32.const -1)))))
        (br $next)))
    (call $reply (i32.const 1310720) (i32.sub (local.get $o) (i32.const 1310720)))))
