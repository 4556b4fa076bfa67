;; badhostfn (hostile): imports "tsubame" "exec", a host function that does
;; not exist. The host refuses it at load (rule "imports").
(module
  (import "tsubame" "exec" (func $exec (param i32 i32)))
  (memory (export "memory") 1)
  (func (export "tsubame_abi_version") (result i32) (i32.const 1))
  (func (export "tsubame_step") (call $exec (i32.const 0) (i32.const 0))))
