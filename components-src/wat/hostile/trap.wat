;; trap (hostile): executes unreachable. The host reports code 1 (trap).
(module
  (memory (export "memory") 1)
  (func (export "tsubame_abi_version") (result i32) (i32.const 1))
  (func (export "tsubame_step") (unreachable)))
