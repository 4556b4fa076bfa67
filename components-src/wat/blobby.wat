;; blobby: exercises the ABI 1.1 blob functions (ABI.md §9). It keeps its
;; input as a blob (blob_put), reads the blob back from offset 1 with
;; blob_read and checks the count, and replies with the blob itself
;; (reply_ref). An input that is itself a blob (input_ref = 1) is replied
;; with as it is, without reading it.
;;
;; Build: wat2wasm blobby.wat -o ../../testdata/blobby.wasm  (scripts/components/wat.sh)
(module
  (import "tsubame" "input" (func $input (param i32 i32) (result i32)))
  (import "tsubame" "blob_put" (func $blob_put (param i32 i32 i32) (result i32)))
  (import "tsubame" "blob_read" (func $blob_read (param i32 i32 i32 i32) (result i32)))
  (import "tsubame" "input_ref" (func $input_ref (param i32) (result i32)))
  (import "tsubame" "reply_ref" (func $reply_ref (param i32)))
  (import "tsubame" "fail" (func $fail (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 128) "blob_put failed")
  (data (i32.const 160) "blob_read count wrong")
  (func (export "tsubame_abi_version") (result i32) (i32.const 1))
  (func (export "tsubame_step")
    (local $n i32) (local $code i32) (local $need i32)
    ;; 0..40: the reference.
    (if (i32.eq (call $input_ref (i32.const 0)) (i32.const 1))
      (then (call $reply_ref (i32.const 0)) (return)))
    (local.set $n (call $input (i32.const 0) (i32.const 0)))
    ;; input at 4096, the read-back copy after it
    (local.set $need
      (i32.shr_u (i32.add (i32.add (i32.const 4096) (i32.shl (local.get $n) (i32.const 1))) (i32.const 65535)) (i32.const 16)))
    (if (i32.gt_u (local.get $need) (memory.size))
      (then (drop (memory.grow (i32.sub (local.get $need) (memory.size))))))
    (drop (call $input (i32.const 4096) (local.get $n)))
    (local.set $code (call $blob_put (i32.const 4096) (local.get $n) (i32.const 0)))
    (if (local.get $code)
      (then (call $fail (local.get $code) (i32.const 128) (i32.const 15)) (return)))
    (if (i32.ne
          (call $blob_read (i32.const 0) (i32.const 1) (i32.add (i32.const 4096) (local.get $n)) (local.get $n))
          (i32.sub (local.get $n) (i32.const 1)))
      (then (call $fail (i32.const 100) (i32.const 160) (i32.const 21)) (return)))
    (call $reply_ref (i32.const 0))))
