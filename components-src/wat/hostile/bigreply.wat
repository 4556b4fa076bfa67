;; bigreply (hostile): replies with 1 MiB + 1 bytes, one more than the
;; reply limit. The host traps the step with code 6 (limit exceeded).
(module
  (import "tsubame" "reply" (func $reply (param i32 i32)))
  (memory (export "memory") 17)
  (func (export "tsubame_abi_version") (result i32) (i32.const 1))
  (func (export "tsubame_step")
    (call $reply (i32.const 0) (i32.const 1048577))))
