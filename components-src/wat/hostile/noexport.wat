;; noexport (hostile): has no tsubame_step export. The host refuses it at
;; load (rule "exports").
(module
  (memory (export "memory") 1)
  (func (export "tsubame_abi_version") (result i32) (i32.const 1)))
