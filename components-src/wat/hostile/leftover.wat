;; leftover: keeps state from one step to the next, against ABI.md §2's
;; advice, so tests can see what a reused instance carries over (and that a
;; fresh instance carries nothing). Every step replies with 4 bytes, the
;; little-endian count of steps this instance ran before (a mutable global),
;; followed by the input of the previous step this instance ran (left in
;; memory at 8192, its length at 8188); then it keeps this step's input there
;; (at most 1024 bytes). Build: wat2wasm leftover.wat -o leftover.wasm
(module
  (import "tsubame" "input" (func $input (param i32 i32) (result i32)))
  (import "tsubame" "reply" (func $reply (param i32 i32)))
  (memory (export "memory") 1)
  (global $steps (mut i32) (i32.const 0))
  (func (export "tsubame_abi_version") (result i32) (i32.const 1))
  (func (export "tsubame_step")
    (local $prev i32) (local $n i32)
    (i32.store (i32.const 1024) (global.get $steps))
    (local.set $prev (i32.load (i32.const 8188)))
    (memory.copy (i32.const 1028) (i32.const 8192) (local.get $prev))
    (call $reply (i32.const 1024) (i32.add (i32.const 4) (local.get $prev)))
    ;; the host copied the reply: keep this input for the next step
    (local.set $n (call $input (i32.const 8192) (i32.const 1024)))
    (i32.store (i32.const 8188)
      (select (local.get $n) (i32.const 1024) (i32.le_u (local.get $n) (i32.const 1024))))
    (global.set $steps (i32.add (global.get $steps) (i32.const 1)))))
