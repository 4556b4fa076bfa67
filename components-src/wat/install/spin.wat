;; spin: replies with its input after spinning for two seconds of the
;; monotonic clock (WASI clock_time_get), for the multi-process tests that
;; need LPs to stay suspended in their caller while an operator acts (a
;; node configured with a step deadline over two seconds). The host offers no
;; sleep; spinning on the clock makes the wait a fixed time, not a number of
;; iterations that depends on the machine's speed.
;;
;; Build: wat2wasm spin.wat -o ../../../testdata/spin.wasm  (scripts/components/wat.sh)
(module
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (import "tsubame" "input" (func $input (param i32 i32) (result i32)))
  (import "tsubame" "reply" (func $reply (param i32 i32)))
  (memory (export "memory") 1)
  (func $now (result i64)
    ;; clock 1 is monotonic; the time in ns goes to offset 0
    (drop (call $clock (i32.const 1) (i64.const 1) (i32.const 0)))
    (i64.load (i32.const 0)))
  (func (export "tsubame_abi_version") (result i32) (i32.const 1))
  (func (export "tsubame_step")
    (local $until i64) (local $n i32)
    (local.set $until (i64.add (call $now) (i64.const 2000000000)))
    (loop $spin
      (br_if $spin (i64.lt_u (call $now) (local.get $until))))
    ;; reply with up to 60 KiB of input, from offset 1024
    (local.set $n (call $input (i32.const 1024) (i32.const 61440)))
    (if (i32.gt_u (local.get $n) (i32.const 61440)) (then (unreachable)))
    (call $reply (i32.const 1024) (local.get $n))))
