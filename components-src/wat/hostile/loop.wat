;; loop (hostile): spins forever. The host must end the step at its deadline
;; (code 2, timeout) and discard the instance.
(module
  (memory (export "memory") 1)
  (func (export "tsubame_abi_version") (result i32) (i32.const 1))
  (func (export "tsubame_step")
    (loop $forever (br $forever))))
