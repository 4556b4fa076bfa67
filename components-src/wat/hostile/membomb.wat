;; membomb (hostile): grows memory until memory.grow fails at the host's
;; page limit, then traps. The host reports code 5 (memory limit). It grows
;; 16 pages at a time like a real allocator, then page by page, so it ends
;; exactly at the limit without thousands of one-page grows.
(module
  (memory (export "memory") 1)
  (func (export "tsubame_abi_version") (result i32) (i32.const 1))
  (func (export "tsubame_step")
    (loop $chunks
      (br_if $chunks (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
    (loop $pages
      (br_if $pages (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
    (unreachable)))
