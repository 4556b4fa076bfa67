;; twooutcomes (hostile): replies twice. The second reply traps the step
;; with code 3 (abi violation).
(module
  (import "tsubame" "reply" (func $reply (param i32 i32)))
  (memory (export "memory") 1)
  (func (export "tsubame_abi_version") (result i32) (i32.const 1))
  (func (export "tsubame_step")
    (call $reply (i32.const 0) (i32.const 1))
    (call $reply (i32.const 0) (i32.const 1))))
