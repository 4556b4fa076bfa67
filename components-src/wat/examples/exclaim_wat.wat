;; exclaim_wat: a caller in raw WebAssembly text, ABI.md §6's explicit
;; continuation example by hand. Kind "greet" asks component "greet" (any
;; greet: Go, C, Rust, AssemblyScript or greet_wat installed under that name)
;; to greet the input, then replies with the answer and "!". A failure of
;; greet is forwarded with its code and message.
;;
;; The step is a two-state machine, told apart by calls():
;;   calls() == 0  first step: call greet, saving the continuation "x1"
;;   calls() == 1  resumed: check the continuation, read child 0, reply/fail
;;
;; Memory map: 0.. "greet" (target and kind), 16.. "x1" (continuation),
;; 32.. "bad continuation", 1024.. input / child result.
;;
;; Build: wat2wasm exclaim_wat.wat -o testdata/exclaim_wat.wasm (scripts/components/wat.sh)
(module
  (import "tsubame" "input" (func $input (param i32 i32) (result i32)))
  (import "tsubame" "cont" (func $cont (param i32 i32) (result i32)))
  (import "tsubame" "calls" (func $calls (result i32)))
  (import "tsubame" "child_code" (func $child_code (param i32) (result i32)))
  (import "tsubame" "child" (func $child (param i32 i32 i32) (result i32)))
  (import "tsubame" "reply" (func $reply (param i32 i32)))
  (import "tsubame" "call" (func $call (param i32 i32 i32 i32 i32 i32 i32 i32)))
  (import "tsubame" "fail" (func $fail (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "greet")
  (data (i32.const 16) "x1")
  (data (i32.const 32) "bad continuation")
  (func (export "tsubame_abi_version") (result i32) (i32.const 1))

  ;; grow makes [0, end) addressable or traps (code 5 past the page limit).
  (func $grow (param $end i32)
    (local $need i32)
    (local.set $need (i32.shr_u (i32.add (local.get $end) (i32.const 65535)) (i32.const 16)))
    (if (i32.gt_u (local.get $need) (memory.size))
      (then
        (if (i32.eq (memory.grow (i32.sub (local.get $need) (memory.size))) (i32.const -1))
          (then (unreachable))))))

  (func (export "tsubame_step")
    (local $n i32) (local $code i32)
    (if (i32.eqz (call $calls))
      (then
        ;; First step: forward our input to greet.greet. The host copies all
        ;; four byte strings during the call, including the continuation.
        (local.set $n (call $input (i32.const 0) (i32.const 0)))
        (call $grow (i32.add (i32.const 1024) (local.get $n)))
        (drop (call $input (i32.const 1024) (local.get $n)))
        (call $call
          (i32.const 0) (i32.const 5)                  ;; target "greet"
          (i32.const 0) (i32.const 5)                  ;; kind "greet"
          (i32.const 1024) (local.get $n)              ;; input
          (i32.const 16) (i32.const 2))                ;; continuation "x1"
        (return)))
    ;; Resumed. The continuation is what we saved: check it, as a state
    ;; machine with more states would switch on it.
    (if (i32.or
          (i32.ne (call $cont (i32.const 20) (i32.const 2)) (i32.const 2))
          (i32.ne (i32.load16_u (i32.const 20)) (i32.load16_u (i32.const 16))))
      (then
        ;; Code 3, not one of ours (100+): the host did not hand back the
        ;; continuation we saved, a broken contract (ABI.md §4).
        (call $fail (i32.const 3) (i32.const 32) (i32.const 16))
        (return)))
    ;; Child 0's result: length first, then the bytes (+1 for the "!").
    (local.set $n (call $child (i32.const 0) (i32.const 0) (i32.const 0)))
    (call $grow (i32.add (i32.const 1025) (local.get $n)))
    (drop (call $child (i32.const 0) (i32.const 1024) (local.get $n)))
    (local.set $code (call $child_code (i32.const 0)))
    (if (local.get $code)
      (then
        ;; The child failed: its result is the failure message. Forward it.
        (call $fail (local.get $code) (i32.const 1024) (local.get $n))
        (return)))
    (i32.store8 (i32.add (i32.const 1024) (local.get $n)) (i32.const 33)) ;; '!'
    (call $reply (i32.const 1024) (i32.add (local.get $n) (i32.const 1)))))
