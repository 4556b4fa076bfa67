;; swap_v2: version 2 of a component whose LPs stay suspended in it, for
;; the hot-install tests: swap_v1 and swap_v2 differ only in the version
;; they name, so a test can install one over the other while LPs wait.
;;
;; First step: call component "slow", kind "get", with this entry's input,
;; saving the continuation "v2" (the version that made the call). Resumed
;; step: reply "<saved version>-><running version>:<slow's reply>", so
;; "v1->v1" shows an LP that started on v1 finished on v1, and "v1->v2"
;; would show a continuation resumed by the wrong version. A failed child's
;; code and message are forwarded.
;;
;; Build: wat2wasm swap_v2.wat -o ../../../testdata/swap_v2.wasm  (scripts/components/wat.sh)
(module
  (import "tsubame" "input" (func $input (param i32 i32) (result i32)))
  (import "tsubame" "cont" (func $cont (param i32 i32) (result i32)))
  (import "tsubame" "calls" (func $calls (result i32)))
  (import "tsubame" "child_code" (func $child_code (param i32) (result i32)))
  (import "tsubame" "child" (func $child (param i32 i32 i32) (result i32)))
  (import "tsubame" "reply" (func $reply (param i32 i32)))
  (import "tsubame" "call" (func $call (param i32 i32 i32 i32 i32 i32 i32 i32)))
  (import "tsubame" "fail" (func $fail (param i32 i32 i32)))
  (memory (export "memory") 4)
  ;; 0: "slow", 8: "get", 16: this version's name, 24: "->"
  (data (i32.const 0) "slow")
  (data (i32.const 8) "get")
  (data (i32.const 16) "v2")
  (data (i32.const 24) "->")
  (func (export "tsubame_abi_version") (result i32) (i32.const 1))
  (func (export "tsubame_step")
    (local $n i32) (local $c i32) (local $last i32) (local $code i32)
    (if (i32.eqz (call $calls))
      (then
        ;; input (at most 60 KiB) at 4096
        (local.set $n (call $input (i32.const 4096) (i32.const 61440)))
        (if (i32.gt_u (local.get $n) (i32.const 61440)) (then (unreachable)))
        (call $call (i32.const 0) (i32.const 4) (i32.const 8) (i32.const 3)
                     (i32.const 4096) (local.get $n) (i32.const 16) (i32.const 2))
        (return)))
    (local.set $last (i32.sub (call $calls) (i32.const 1)))
    (local.set $code (call $child_code (local.get $last)))
    ;; the child's reply or message at 70000 (at most 60 KiB)
    (local.set $n (call $child (local.get $last) (i32.const 70000) (i32.const 61440)))
    (if (i32.gt_u (local.get $n) (i32.const 61440)) (then (unreachable)))
    (if (local.get $code)
      (then
        (call $fail (local.get $code) (i32.const 70000) (local.get $n))
        (return)))
    ;; reply at 140000: cont, "->", "v2", ":", child reply
    (local.set $c (call $cont (i32.const 140000) (i32.const 16)))
    (if (i32.gt_u (local.get $c) (i32.const 16)) (then (unreachable)))
    (i32.store16 (i32.add (i32.const 140000) (local.get $c)) (i32.load16_u (i32.const 24)))
    (i32.store16 (i32.add (i32.const 140002) (local.get $c)) (i32.load16_u (i32.const 16)))
    (i32.store8 (i32.add (i32.const 140004) (local.get $c)) (i32.const 58))
    (memory.copy (i32.add (i32.const 140005) (local.get $c)) (i32.const 70000) (local.get $n))
    (call $reply (i32.const 140000) (i32.add (i32.add (local.get $c) (i32.const 5)) (local.get $n)))))
