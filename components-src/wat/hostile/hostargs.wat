;; hostargs (hostile): calls the version-1 host functions with arguments taken
;; from its input, for the host's argument-check fuzz target
;; (wasmhost.FuzzHostArgs). The input is 16-byte records, little-endian:
;; function number (mod 10), then three i32 arguments a, b, c; call takes
;; (a, b, c, a, b, c, a, b). Whatever the arguments, the host must answer or
;; fail the step with a code, never crash.
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
  (memory (export "memory") 2)
  (func (export "tsubame_abi_version") (result i32) (i32.const 1))
  (func (export "tsubame_step")
    (local $n i32) (local $p i32) (local $a i32) (local $b i32) (local $c i32)
    ;; the records, at 65536 (the second page), at most 4096 bytes of them
    (local.set $n (call $input (i32.const 65536) (i32.const 4096)))
    (if (i32.gt_s (local.get $n) (i32.const 4096)) (then (local.set $n (i32.const 4096))))
    (local.set $p (i32.const 65536))
    (block $done
      (loop $next
        (br_if $done (i32.gt_s (i32.add (local.get $p) (i32.const 16))
                               (i32.add (i32.const 65536) (local.get $n))))
        (local.set $a (i32.load (i32.add (local.get $p) (i32.const 4))))
        (local.set $b (i32.load (i32.add (local.get $p) (i32.const 8))))
        (local.set $c (i32.load (i32.add (local.get $p) (i32.const 12))))
        (block $call (block $9 (block $8 (block $7 (block $6 (block $5 (block $4 (block $3 (block $2 (block $1 (block $0
          (br_table $0 $1 $2 $3 $4 $5 $6 $7 $8 $9
            (i32.rem_u (i32.load (local.get $p)) (i32.const 10))))
          (drop (call $kind (local.get $a) (local.get $b))) (br $call))
          (drop (call $input (local.get $a) (local.get $b))) (br $call))
          (drop (call $cont (local.get $a) (local.get $b))) (br $call))
          (drop (call $calls)) (br $call))
          (drop (call $child_code (local.get $a))) (br $call))
          (drop (call $child (local.get $a) (local.get $b) (local.get $c))) (br $call))
          (call $reply (local.get $a) (local.get $b)) (br $call))
          (call $call (local.get $a) (local.get $b) (local.get $c) (local.get $a)
                      (local.get $b) (local.get $c) (local.get $a) (local.get $b)) (br $call))
          (call $fail (local.get $a) (local.get $b) (local.get $c)) (br $call))
          (call $log (local.get $a) (local.get $b) (local.get $c)))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (br $next)))))
