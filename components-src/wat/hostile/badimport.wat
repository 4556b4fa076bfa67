;; badimport (hostile): imports from module "env", which the ABI forbids.
;; The host refuses it at load (rule "imports").
(module
  (import "env" "something" (func $something))
  (memory (export "memory") 1)
  (func (export "tsubame_abi_version") (result i32) (i32.const 1))
  (func (export "tsubame_step") (call $something)))
