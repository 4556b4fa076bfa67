;; badhostsig (hostile): imports "tsubame" "reply" with a result it does not
;; have. The host refuses it at load (rule "imports").
(module
  (import "tsubame" "reply" (func $reply (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "tsubame_abi_version") (result i32) (i32.const 1))
  (func (export "tsubame_step") (drop (call $reply (i32.const 0) (i32.const 0)))))
