;; nooutcome (hostile): returns from tsubame_step without replying, calling
;; or failing. The host fails the step with code 3 (abi violation).
(module
  (import "tsubame" "input" (func $input (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "tsubame_abi_version") (result i32) (i32.const 1))
  (func (export "tsubame_step") (drop (call $input (i32.const 0) (i32.const 0)))))
