;; badversion (hostile): claims ABI version 2. The host refuses it at load
;; (rule "abi version").
(module
  (import "tsubame" "reply" (func $reply (param i32 i32)))
  (memory (export "memory") 1)
  (func (export "tsubame_abi_version") (result i32) (i32.const 2))
  (func (export "tsubame_step") (call $reply (i32.const 0) (i32.const 0))))
