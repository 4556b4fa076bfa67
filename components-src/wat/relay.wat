;; relay: forwards its input along a path of components, exercising calls
;; and continuations (cont, calls, child, child_code).
;;
;; Input "B/rest": call component B with the same kind and input "rest",
;; saving the continuation "relay1"; when B finishes, reply with B's reply,
;; or fail with B's code and message. Input without '/': reply with it (the
;; end of the path). So relay("b/c/hi") with b=relay and c=echo runs
;; relay -> relay -> echo -> relay -> relay and replies "hi".
;;
;; On resume the saved continuation must read back exactly "relay1" (else
;; the step traps): this checks that the host keeps the continuation.
;;
;; Build: wat2wasm relay.wat -o ../../testdata/relay.wasm  (scripts/components/wat.sh)
(module
  (import "tsubame" "kind" (func $kind (param i32 i32) (result i32)))
  (import "tsubame" "input" (func $input (param i32 i32) (result i32)))
  (import "tsubame" "cont" (func $cont (param i32 i32) (result i32)))
  (import "tsubame" "calls" (func $calls (result i32)))
  (import "tsubame" "child_code" (func $child_code (param i32) (result i32)))
  (import "tsubame" "child" (func $child (param i32 i32 i32) (result i32)))
  (import "tsubame" "reply" (func $reply (param i32 i32)))
  (import "tsubame" "call" (func $call (param i32 i32 i32 i32 i32 i32 i32 i32)))
  (import "tsubame" "fail" (func $fail (param i32 i32 i32)))
  (import "tsubame" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  ;; 0..6: the continuation we save; 16..24: a log line.
  (data (i32.const 0) "relay1")
  (data (i32.const 16) "resumed")
  (func (export "tsubame_abi_version") (result i32) (i32.const 1))

  ;; ensure grows memory so that [0, end) is addressable.
  (func $ensure (param $end i32)
    (local $need i32)
    (local.set $need (i32.shr_u (i32.add (local.get $end) (i32.const 65535)) (i32.const 16)))
    (if (i32.gt_u (local.get $need) (memory.size))
      (then
        (if (i32.eq (memory.grow (i32.sub (local.get $need) (memory.size))) (i32.const -1))
          (then (unreachable))))))

  (func (export "tsubame_step")
    (local $n i32) (local $i i32) (local $k i32) (local $last i32) (local $code i32)
    (if (i32.eqz (call $calls))
      (then
        ;; First step: kind at 256 (names are at most 64 bytes), input at 4096.
        (local.set $k (call $kind (i32.const 256) (i32.const 64)))
        (local.set $n (call $input (i32.const 0) (i32.const 0)))
        (call $ensure (i32.add (i32.const 4096) (local.get $n)))
        (drop (call $input (i32.const 4096) (local.get $n)))
        ;; find the first '/'
        (local.set $i (i32.const 0))
        (block $found
          (loop $scan
            (br_if $found (i32.ge_u (local.get $i) (local.get $n)))
            (br_if $found (i32.eq (i32.load8_u (i32.add (i32.const 4096) (local.get $i))) (i32.const 47)))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $scan)))
        (if (i32.ge_u (local.get $i) (local.get $n))
          (then
            (call $reply (i32.const 4096) (local.get $n))
            (return)))
        ;; call target = input[0:i], kind = our kind, input = input[i+1:], cont = "relay1"
        (call $call
          (i32.const 4096) (local.get $i)
          (i32.const 256) (local.get $k)
          (i32.add (i32.const 4097) (local.get $i))
          (i32.sub (local.get $n) (i32.add (local.get $i) (i32.const 1)))
          (i32.const 0) (i32.const 6))
        (return)))
    ;; Resumed: the continuation must be "relay1".
    (if (i32.ne (call $cont (i32.const 128) (i32.const 64)) (i32.const 6)) (then (unreachable)))
    (if (i64.ne (i64.load (i32.const 128)) (i64.load (i32.const 0))) (then (unreachable)))
    (call $log (i32.const 0) (i32.const 16) (i32.const 7))
    (local.set $last (i32.sub (call $calls) (i32.const 1)))
    (local.set $n (call $child (local.get $last) (i32.const 0) (i32.const 0)))
    (call $ensure (i32.add (i32.const 4096) (local.get $n)))
    (drop (call $child (local.get $last) (i32.const 4096) (local.get $n)))
    (local.set $code (call $child_code (local.get $last)))
    (if (i32.eqz (local.get $code))
      (then (call $reply (i32.const 4096) (local.get $n)))
      (else (call $fail (local.get $code) (i32.const 4096) (local.get $n))))))
