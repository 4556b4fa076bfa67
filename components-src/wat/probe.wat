;; probe: replies with what the host's readers return, so tests can check
;; each reader's exact result. Reply layout, little-endian i32s:
;;   0  calls()
;;   4  child_code(calls() - 1)     (-1 on the first step)
;;   8  child_code(calls())         (always -1: no such call)
;;  12  child_code(-1)              (always -1)
;;  16  child(-1, 0, 0)             (always -1)
;;  20  child(calls() - 1, 0, 0)    (the newest result's length, or -1)
;;  24  kind(0, 0)                  (the kind's length)
;;  28  input(0, 0)                 (the input's length)
;;  32  cont(0, 0)                  (the continuation's length)
;;  36  input(1024, 3)              (the input's length; only 3 bytes copied)
;;  40  the bytes at 1024..1028 after that: 3 input bytes, then 0x7e untouched
;;  44  kind(48, 64), then the kind's bytes from offset 48
;; Kind "call": the first step calls "probe" (kind "leaf") with the input and
;; continuation "k"; the resumed step probes. Any other kind probes at once.
(module
  (import "tsubame" "kind" (func $kind (param i32 i32) (result i32)))
  (import "tsubame" "input" (func $input (param i32 i32) (result i32)))
  (import "tsubame" "cont" (func $cont (param i32 i32) (result i32)))
  (import "tsubame" "calls" (func $calls (result i32)))
  (import "tsubame" "child_code" (func $child_code (param i32) (result i32)))
  (import "tsubame" "child" (func $child (param i32 i32 i32) (result i32)))
  (import "tsubame" "reply" (func $reply (param i32 i32)))
  (import "tsubame" "call" (func $call (param i32 i32 i32 i32 i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 2048) "probeleafk")
  (func (export "tsubame_abi_version") (result i32) (i32.const 1))
  (func (export "tsubame_step")
    (local $n i32) (local $k i32)
    ;; kind "call" on the first step: call probe/leaf with our input
    (local.set $k (call $kind (i32.const 3000) (i32.const 64)))
    (if (i32.and
          (i32.and (i32.eq (local.get $k) (i32.const 4))
                   (i32.eq (i32.load (i32.const 3000)) (i32.const 0x6c6c6163))) ;; "call"
          (i32.eqz (call $calls)))
      (then
        (local.set $n (call $input (i32.const 4096) (i32.const 4096)))
        (call $call (i32.const 2048) (i32.const 5) (i32.const 2053) (i32.const 4)
                    (i32.const 4096) (local.get $n) (i32.const 2057) (i32.const 1))
        (return)))
    (i32.store (i32.const 0) (call $calls))
    (i32.store (i32.const 4) (call $child_code (i32.sub (call $calls) (i32.const 1))))
    (i32.store (i32.const 8) (call $child_code (call $calls)))
    (i32.store (i32.const 12) (call $child_code (i32.const -1)))
    (i32.store (i32.const 16) (call $child (i32.const -1) (i32.const 0) (i32.const 0)))
    (i32.store (i32.const 20) (call $child (i32.sub (call $calls) (i32.const 1)) (i32.const 0) (i32.const 0)))
    (i32.store (i32.const 24) (call $kind (i32.const 0) (i32.const 0)))
    (i32.store (i32.const 28) (call $input (i32.const 0) (i32.const 0)))
    (i32.store (i32.const 32) (call $cont (i32.const 0) (i32.const 0)))
    (i32.store (i32.const 1024) (i32.const 0x7e7e7e7e))
    (i32.store (i32.const 36) (call $input (i32.const 1024) (i32.const 3)))
    (i32.store (i32.const 40) (i32.load (i32.const 1024)))
    (local.set $k (call $kind (i32.const 48) (i32.const 64)))
    (i32.store (i32.const 44) (local.get $k))
    (call $reply (i32.const 0) (i32.add (i32.const 48) (local.get $k)))))
