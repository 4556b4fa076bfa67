;; greet_wat: the greet component in raw WebAssembly text, the twin of
;; components-src/go/greet and of greet_c, greet_rust and greet_as. No SDK:
;; this is the ABI (abi/ABI.md) by hand.
;;
;;   kind "greet", input NAME  -> reply "Hello, NAME"
;;   kind "greet", empty input -> fail 400 "greet: empty name"
;;   any other kind            -> fail 404 "no handler for this kind"
;;
;; Memory map (one 64 KiB page to start, grown for big inputs):
;;      0.. 63   the kind, read with (ptr, cap) = (0, 64): names are <= 64 bytes
;;     64.. 95   constant strings (data segments below)
;;   1024..      the reply: "Hello, " then the input copied right after it
;;
;; Build: wat2wasm greet_wat.wat -o testdata/greet_wat.wasm (scripts/components/wat.sh)
(module
  ;; Every host function is imported from module "tsubame"; all i32.
  (import "tsubame" "kind" (func $kind (param i32 i32) (result i32)))   ;; (ptr, cap) -> len
  (import "tsubame" "input" (func $input (param i32 i32) (result i32))) ;; (ptr, cap) -> len
  (import "tsubame" "reply" (func $reply (param i32 i32)))             ;; (ptr, len)
  (import "tsubame" "fail" (func $fail (param i32 i32 i32)))           ;; (code, ptr, len)

  ;; The host reads and writes only the exported memory.
  (memory (export "memory") 1)
  (data (i32.const 64) "greet")                     ;; 64..69
  (data (i32.const 70) "greet: empty name")         ;; 70..87 (17 bytes)
  (data (i32.const 1024) "Hello, ")                 ;; 1024..1031, the reply's prefix
  (data (i32.const 128) "no handler for this kind") ;; 128..152 (24 bytes)

  ;; The host calls this once at load and refuses anything but 1.
  (func (export "tsubame_abi_version") (result i32) (i32.const 1))

  ;; One step. Exactly one of reply/fail ends it (a second one would trap).
  (func (export "tsubame_step")
    (local $k i32) (local $n i32) (local $need i32)
    ;; kind == "greet"? Compare length, then the 5 bytes as an i32 + an i8.
    (local.set $k (call $kind (i32.const 0) (i32.const 64)))
    (if (i32.or
          (i32.ne (local.get $k) (i32.const 5))
          (i32.or
            (i32.ne (i32.load (i32.const 0)) (i32.load (i32.const 64)))
            (i32.ne (i32.load8_u (i32.const 4)) (i32.load8_u (i32.const 68)))))
      (then
        (call $fail (i32.const 404) (i32.const 128) (i32.const 24))
        (return)))
    ;; Ask for the input's length first (cap 0 writes nothing).
    (local.set $n (call $input (i32.const 0) (i32.const 0)))
    (if (i32.eqz (local.get $n))
      (then
        (call $fail (i32.const 400) (i32.const 70) (i32.const 17))
        (return)))
    ;; Grow memory so that [1031, 1031+n) fits, then read the input there.
    (local.set $need
      (i32.shr_u (i32.add (i32.add (i32.const 1031) (local.get $n)) (i32.const 65535)) (i32.const 16)))
    (if (i32.gt_u (local.get $need) (memory.size))
      (then
        ;; memory.grow returns -1 past the host's page limit: trap (code 5).
        (if (i32.eq (memory.grow (i32.sub (local.get $need) (memory.size))) (i32.const -1))
          (then (unreachable)))))
    (drop (call $input (i32.const 1031) (local.get $n)))
    ;; The host copies the reply before returning, so the buffer is free after.
    (call $reply (i32.const 1024) (i32.add (i32.const 7) (local.get $n)))))
