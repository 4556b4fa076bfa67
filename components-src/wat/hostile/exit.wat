;; exit (hostile): calls WASI proc_exit. Input "0": reply "bye" then
;; proc_exit(0), which ends the step normally. Any other input: proc_exit(3)
;; without an outcome, which the host reports as code 1 (trap).
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (import "tsubame" "input" (func $input (param i32 i32) (result i32)))
  (import "tsubame" "reply" (func $reply (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "bye")
  (func (export "tsubame_abi_version") (result i32) (i32.const 1))
  (func (export "tsubame_step")
    (drop (call $input (i32.const 0) (i32.const 1)))
    (if (i32.eq (i32.load8_u (i32.const 0)) (i32.const 48))
      (then
        (call $reply (i32.const 16) (i32.const 3))
        (call $proc_exit (i32.const 0))))
    (call $proc_exit (i32.const 3))))
