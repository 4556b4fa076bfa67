;; failbig (hostile): fails with a code child_code cannot return. Failure
;; codes are 1 to 2^31-1, because a caller reads a child's code as an i32
;; where negative means "no such call". Input "max": fail with 2^31-1, the
;; largest valid code (the step fails with it). Any other input: fail with
;; 2^31, which traps the step with code 3 (abi violation).
;;
;; Build: wat2wasm failbig.wat -o ../../../testdata/failbig.wasm  (scripts/components/wat.sh)
(module
  (import "tsubame" "input" (func $input (param i32 i32) (result i32)))
  (import "tsubame" "fail" (func $fail (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "too big")
  (func (export "tsubame_abi_version") (result i32) (i32.const 1))
  (func (export "tsubame_step")
    (drop (call $input (i32.const 0) (i32.const 3)))
    (if (i32.eq (i32.load8_u (i32.const 0)) (i32.const 109)) ;; m
      (then
        (call $fail (i32.const 0x7fffffff) (i32.const 16) (i32.const 7))
        (return)))
    (call $fail (i32.const 0x80000000) (i32.const 16) (i32.const 7))))
