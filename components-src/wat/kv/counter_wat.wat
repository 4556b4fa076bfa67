;; counter_wat: counts requests in the component's private KV bucket (ABI
;; 1.1, ABI.md §10) and replies with the new count in decimal. Each request
;; adds 1 to the key "count" with kv_add; because KV operations are journaled
;; by step, a request whose step runs twice (a resend, an unclear migration)
;; still counts once. A backend that does not answer fails the entry with
;; code 12 (store unavailable); any other status with code 500.
;; Build: wat2wasm components-src/wat/kv/counter_wat.wat -o testdata/counter_wat.wasm
(module
  (import "tsubame" "kv_add" (func $kv_add (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "tsubame" "reply" (func $reply (param i32 i32)))
  (import "tsubame" "fail" (func $fail (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "count")
  (data (i32.const 32) "kv backend unavailable")
  (data (i32.const 64) "kv_add failed")
  (func (export "tsubame_abi_version") (result i32) (i32.const 1))
  (func (export "tsubame_step")
    (local $st i32) (local $n i64) (local $p i32)
    ;; bucket "" (the private one), key "count", delta 1, the sum at 128
    (local.set $st (call $kv_add (i32.const 0) (i32.const 0) (i32.const 16) (i32.const 5)
      (i32.const 1) (i32.const 128)))
    (if (i32.eq (local.get $st) (i32.const -3))
      (then (call $fail (i32.const 12) (i32.const 32) (i32.const 22)) (return)))
    (if (i32.ne (local.get $st) (i32.const 0))
      (then (call $fail (i32.const 500) (i32.const 64) (i32.const 13)) (return)))
    ;; the count in decimal, written backwards from 256 (a count is never
    ;; negative here: it only ever grows by 1)
    (local.set $n (i64.load (i32.const 128)))
    (local.set $p (i32.const 256))
    (loop $digit
      (local.set $p (i32.sub (local.get $p) (i32.const 1)))
      (i64.store8 (local.get $p) (i64.add (i64.const 48) (i64.rem_u (local.get $n) (i64.const 10))))
      (local.set $n (i64.div_u (local.get $n) (i64.const 10)))
      (br_if $digit (i64.ne (local.get $n) (i64.const 0))))
    (call $reply (local.get $p) (i32.sub (i32.const 256) (local.get $p)))))
