;; flaky (hostile): misbehaves only when asked, so tests can check that a
;; broken step does not poison the instance pool. The first input byte:
;;   'l' loops forever (timeout)   't' traps (unreachable)
;;   'p' replies with a pointer past the end of memory (abi violation)
;;   anything else: replies with the input.
(module
  (import "tsubame" "input" (func $input (param i32 i32) (result i32)))
  (import "tsubame" "reply" (func $reply (param i32 i32)))
  (memory (export "memory") 1)
  (func (export "tsubame_abi_version") (result i32) (i32.const 1))
  (func (export "tsubame_step")
    (local $n i32) (local $c i32)
    (local.set $n (call $input (i32.const 0) (i32.const 65536)))
    (if (i32.gt_u (local.get $n) (i32.const 65536)) (then (unreachable)))
    (local.set $c (i32.load8_u (i32.const 0)))
    (if (i32.and (i32.eq (local.get $c) (i32.const 108)) (i32.ne (local.get $n) (i32.const 0))) ;; l
      (then (loop $forever (br $forever))))
    (if (i32.and (i32.eq (local.get $c) (i32.const 116)) (i32.ne (local.get $n) (i32.const 0))) ;; t
      (then (unreachable)))
    (if (i32.and (i32.eq (local.get $c) (i32.const 112)) (i32.ne (local.get $n) (i32.const 0))) ;; p
      (then (call $reply (i32.const 65535) (i32.const 2)) (return)))
    (call $reply (i32.const 0) (local.get $n))))
