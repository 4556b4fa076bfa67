;; echo: replies with its input, whatever the kind. The smallest useful
;; component (ABI.md §8), extended to grow memory for inputs of any size.
;;
;; Build: wat2wasm echo.wat -o ../../testdata/echo.wasm  (scripts/components/wat.sh)
(module
  (import "tsubame" "input" (func $input (param i32 i32) (result i32)))
  (import "tsubame" "reply" (func $reply (param i32 i32)))
  (memory (export "memory") 1)
  (func (export "tsubame_abi_version") (result i32) (i32.const 1))
  (func (export "tsubame_step")
    (local $n i32) (local $need i32)
    ;; Ask for the length first (cap 0), make room at offset 1024, then copy.
    (local.set $n (call $input (i32.const 0) (i32.const 0)))
    ;; pages needed for [0, 1024+n)
    (local.set $need
      (i32.shr_u (i32.add (local.get $n) (i32.const 66559)) (i32.const 16)))
    (if (i32.gt_u (local.get $need) (memory.size))
      (then
        (if (i32.eq (memory.grow (i32.sub (local.get $need) (memory.size))) (i32.const -1))
          (then (unreachable)))))
    (drop (call $input (i32.const 1024) (local.get $n)))
    (call $reply (i32.const 1024) (local.get $n))))
