;; badptr (hostile): passes pointers outside its 1-page memory to the host.
;; The first input byte picks the host function to abuse; every case must
;; trap the step with code 3 (abi violation):
;;   'r' reply past the end        'w' reply range wrapping around 2^32
;;   'i' input with a cap past the end   'k' kind at 0xfffffff0
;;   'c' call with a target range past the end   'f' fail message past the end
;;   'l' log past the end          'h' child with a cap past the end
;;   'n' call with an invalid target name ("9lives")
;;   'z' fail with code 0
(module
  (import "tsubame" "kind" (func $kind (param i32 i32) (result i32)))
  (import "tsubame" "input" (func $input (param i32 i32) (result i32)))
  (import "tsubame" "child" (func $child (param i32 i32 i32) (result i32)))
  (import "tsubame" "reply" (func $reply (param i32 i32)))
  (import "tsubame" "call" (func $call (param i32 i32 i32 i32 i32 i32 i32 i32)))
  (import "tsubame" "fail" (func $fail (param i32 i32 i32)))
  (import "tsubame" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "9livesecho")
  (func (export "tsubame_abi_version") (result i32) (i32.const 1))
  (func (export "tsubame_step")
    (local $c i32)
    (drop (call $input (i32.const 0) (i32.const 1)))
    (local.set $c (i32.load8_u (i32.const 0)))
    (if (i32.eq (local.get $c) (i32.const 114)) ;; r
      (then (call $reply (i32.const 65000) (i32.const 1000)) (return)))
    (if (i32.eq (local.get $c) (i32.const 119)) ;; w
      (then (call $reply (i32.const -1) (i32.const 2)) (return)))
    (if (i32.eq (local.get $c) (i32.const 105)) ;; i
      (then (drop (call $input (i32.const 65535) (i32.const 2))) (return)))
    (if (i32.eq (local.get $c) (i32.const 107)) ;; k
      (then (drop (call $kind (i32.const -16) (i32.const 64))) (return)))
    (if (i32.eq (local.get $c) (i32.const 99)) ;; c
      (then (call $call (i32.const 65530) (i32.const 10) (i32.const 20) (i32.const 4)
                        (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)) (return)))
    (if (i32.eq (local.get $c) (i32.const 102)) ;; f
      (then (call $fail (i32.const 100) (i32.const 0) (i32.const 65537)) (return)))
    (if (i32.eq (local.get $c) (i32.const 108)) ;; l
      (then (call $log (i32.const 1) (i32.const 65536) (i32.const 1)) (return)))
    (if (i32.eq (local.get $c) (i32.const 104)) ;; h
      (then (drop (call $child (i32.const 0) (i32.const 65535) (i32.const 100))) (return)))
    (if (i32.eq (local.get $c) (i32.const 110)) ;; n
      (then (call $call (i32.const 16) (i32.const 6) (i32.const 22) (i32.const 4)
                        (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)) (return)))
    (if (i32.eq (local.get $c) (i32.const 122)) ;; z
      (then (call $fail (i32.const 0) (i32.const 0) (i32.const 0)) (return)))
    (call $reply (i32.const 0) (i32.const 0))))
