;; bigcont (hostile): calls echo while saving a 64 KiB + 1 byte
;; continuation, one more than the limit. The host traps the step with
;; code 6 (limit exceeded).
(module
  (import "tsubame" "call" (func $call (param i32 i32 i32 i32 i32 i32 i32 i32)))
  (memory (export "memory") 2)
  (data (i32.const 0) "echoecho")
  (func (export "tsubame_abi_version") (result i32) (i32.const 1))
  (func (export "tsubame_step")
    (call $call (i32.const 0) (i32.const 4) (i32.const 4) (i32.const 4)
                (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 65537))))
