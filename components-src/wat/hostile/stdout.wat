;; stdout: writes "hello from wasi\n" to WASI stdout (fd 1), which the host
;; sends to its log, and replies "ok". _initialize counts how often it runs
;; (exported as global "inits") so tests can check it runs once per instance.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "tsubame" "reply" (func $reply (param i32 i32)))
  (memory (export "memory") 1)
  (global $inits (export "inits") (mut i32) (i32.const 0))
  ;; iovec at 0: {ptr 32, len 16}
  (data (i32.const 0) "\20\00\00\00\10\00\00\00")
  (data (i32.const 32) "hello from wasi\0a")
  (data (i32.const 64) "ok")
  (func (export "_initialize") (global.set $inits (i32.add (global.get $inits) (i32.const 1))))
  (func (export "tsubame_abi_version") (result i32) (i32.const 1))
  (func (export "tsubame_step")
    (if (i32.ne (global.get $inits) (i32.const 1)) (then (unreachable)))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)))
    (call $reply (i32.const 64) (i32.const 2))))
