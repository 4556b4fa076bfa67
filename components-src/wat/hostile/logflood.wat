;; logflood (hostile): writes 4 KiB log records and 4 KiB to WASI stdout in a
;; loop until its step deadline. The host must bound what reaches its log per
;; step and per component per second, count the rest, and say so once.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "tsubame" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  ;; iovec at 0: {ptr 64, len 4096}; the text at 64 ends in a newline at 4159.
  (data (i32.const 0) "\40\00\00\00\00\10\00\00")
  (data (i32.const 64) "flood")
  (data (i32.const 4159) "\0a")
  (func (export "tsubame_abi_version") (result i32) (i32.const 1))
  (func (export "tsubame_step")
    (loop $forever
      (call $log (i32.const 1) (i32.const 64) (i32.const 4095))
      (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 32)))
      (br $forever))))
