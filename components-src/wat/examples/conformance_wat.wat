;; conformance_wat: the conformance kinds (conformance/kinds.md) in raw
;; WebAssembly text, no SDK: the same behaviours as conformance_go, _c, _rust
;; and _as, including the sequential style's replay (FNV-1a 64 fingerprints
;; in a "TSQ1" continuation, ABI.md section 6) written out by hand.
;;
;; Memory map:
;;      0..  63   the request kind (names are at most 64 bytes)
;;     64.. 703   constant strings (data segments below)
;;    720.. 735   scratch for decimal numbers
;;   4096..       a bump heap, reset at the start of every step and grown on demand
;;
;; Build: wat2wasm conformance_wat.wat -o testdata/conformance_wat.wasm (scripts/components/wat.sh)
(module
  (import "tsubame" "kind" (func $kind (param i32 i32) (result i32)))
  (import "tsubame" "input" (func $input (param i32 i32) (result i32)))
  (import "tsubame" "cont" (func $cont (param i32 i32) (result i32)))
  (import "tsubame" "calls" (func $calls (result i32)))
  (import "tsubame" "child_code" (func $child_code (param i32) (result i32)))
  (import "tsubame" "child" (func $child (param i32 i32 i32) (result i32)))
  (import "tsubame" "reply" (func $reply (param i32 i32)))
  (import "tsubame" "call" (func $call (param i32 i32 i32 i32 i32 i32 i32 i32)))
  (import "tsubame" "fail" (func $fail (param i32 i32 i32)))
  (import "tsubame" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "echo") ;; $echo: 64, 4 bytes
  (data (i32.const 80) "greet") ;; $greet: 80, 5 bytes
  (data (i32.const 96) "fail") ;; $fail: 96, 4 bytes
  (data (i32.const 112) "call") ;; $call: 112, 4 bytes
  (data (i32.const 128) "catch") ;; $catch: 128, 5 bytes
  (data (i32.const 144) "cont") ;; $cont: 144, 4 bytes
  (data (i32.const 160) "seq") ;; $seq: 160, 3 bytes
  (data (i32.const 176) "loop") ;; $loop: 176, 4 bytes
  (data (i32.const 192) "nondet") ;; $nondet: 192, 6 bytes
  (data (i32.const 208) "log") ;; $log: 208, 3 bytes
  (data (i32.const 224) "big") ;; $big: 224, 3 bytes
  (data (i32.const 240) "size") ;; $size: 240, 4 bytes
  (data (i32.const 256) "trap") ;; $trap: 256, 4 bytes
  (data (i32.const 272) "Hello, ") ;; $hello: 272, 7 bytes
  (data (i32.const 288) "call:1") ;; $call1: 288, 6 bytes
  (data (i32.const 304) "conformance: lost continuation") ;; $lost: 304, 30 bytes
  (data (i32.const 336) "ok: ") ;; $ok: 336, 4 bytes
  (data (i32.const 352) "failed ") ;; $failed: 352, 7 bytes
  (data (i32.const 368) ": ") ;; $colon: 368, 2 bytes
  (data (i32.const 384) "conformance: continuation changed") ;; $changed: 384, 33 bytes
  (data (i32.const 432) "cont ok ") ;; $contok: 432, 8 bytes
  (data (i32.const 448) "x") ;; $x: 448, 1 bytes
  (data (i32.const 464) "TSQ1") ;; $tsq: 464, 4 bytes
  (data (i32.const 480) "nondeterministic replay at call ") ;; $nondetmsg: 480, 32 bytes
  (data (i32.const 528) "sequential continuation does not match the finished calls") ;; $badseq: 528, 57 bytes
  (data (i32.const 592) "logged") ;; $logged: 592, 6 bytes
  (data (i32.const 608) "no handler for kind \"") ;; $nohandler: 608, 21 bytes
  (data (i32.const 640) "\"") ;; $quote: 640, 1 bytes
  (data (i32.const 656) "|") ;; $bar: 656, 1 bytes
  (data (i32.const 672) ",") ;; $comma: 672, 1 bytes
  (data (i32.const 688) " ") ;; $sp: 688, 1 bytes

  ;; The heap, and the values every kind uses.
  (global $heap (mut i32) (i32.const 4096))
  (global $in (mut i32) (i32.const 0))    ;; input
  (global $in_len (mut i32) (i32.const 0))
  (global $k_len (mut i32) (i32.const 0)) ;; kind, at 0
  ;; "TARGET KIND REST" split by $args
  (global $t (mut i32) (i32.const 0)) (global $t_len (mut i32) (i32.const 0))
  (global $k (mut i32) (i32.const 0)) (global $k2_len (mut i32) (i32.const 0))
  (global $r (mut i32) (i32.const 0)) (global $r_len (mut i32) (i32.const 0))
  ;; a string being built by $b_add (nothing else may allocate meanwhile)
  (global $b (mut i32) (i32.const 0)) (global $b_len (mut i32) (i32.const 0))
  ;; the sequential style: calls finished, the continuation, the next call
  ;; number, 1 + a call whose fingerprint differs, the pending call
  (global $s_fin (mut i32) (i32.const 0))
  (global $s_cont (mut i32) (i32.const 0))
  (global $s_next (mut i32) (i32.const 0))
  (global $s_bad (mut i32) (i32.const 0))
  (global $s_pend (mut i32) (i32.const 0))
  (global $p_t (mut i32) (i32.const 0)) (global $p_tl (mut i32) (i32.const 0))
  (global $p_k (mut i32) (i32.const 0)) (global $p_kl (mut i32) (i32.const 0))
  (global $p_i (mut i32) (i32.const 0)) (global $p_il (mut i32) (i32.const 0))
  (global $p_fp (mut i64) (i64.const 0))
  ;; the result of the last $seq_call that had one
  (global $res_code (mut i32) (i32.const 0))
  (global $res (mut i32) (i32.const 0)) (global $res_len (mut i32) (i32.const 0))

  (func (export "tsubame_abi_version") (result i32) (i32.const 1))

  ;; ---- memory helpers ----

  ;; ensure grows memory so that [0, end) is addressable, or traps.
  (func $ensure (param $end i32)
    (local $need i32)
    (local.set $need (i32.shr_u (i32.add (local.get $end) (i32.const 65535)) (i32.const 16)))
    (if (i32.gt_u (local.get $need) (memory.size))
      (then
        (if (i32.eq (memory.grow (i32.sub (local.get $need) (memory.size))) (i32.const -1))
          (then (unreachable))))))

  ;; alloc returns n bytes, 8-aligned, valid until the step ends.
  (func $alloc (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (i32.and (i32.add (global.get $heap) (i32.const 7)) (i32.const -8)))
    (global.set $heap (i32.add (local.get $p) (local.get $n)))
    (call $ensure (global.get $heap))
    (local.get $p))

  ;; eq compares two byte strings.
  (func $eq (param $a i32) (param $al i32) (param $b i32) (param $bl i32) (result i32)
    (local $i i32)
    (if (i32.ne (local.get $al) (local.get $bl)) (then (return (i32.const 0))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $al)))
        (if (i32.ne (i32.load8_u (i32.add (local.get $a) (local.get $i)))
                    (i32.load8_u (i32.add (local.get $b) (local.get $i))))
          (then (return (i32.const 0))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.const 1))

  ;; is_kind reports whether the request kind is the string at (p, n).
  (func $is_kind (param $p i32) (param $n i32) (result i32)
    (call $eq (i32.const 0) (global.get $k_len) (local.get $p) (local.get $n)))

  ;; space returns the index of the first ' ' in (p, n), or n.
  (func $space (param $p i32) (param $n i32) (result i32)
    (local $i i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (br_if $done (i32.eq (i32.load8_u (i32.add (local.get $p) (local.get $i))) (i32.const 32)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $i))

  ;; num parses leading decimal digits.
  (func $num (param $p i32) (param $n i32) (result i32)
    (local $i i32) (local $v i32) (local $c i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $c (i32.sub (i32.load8_u (i32.add (local.get $p) (local.get $i))) (i32.const 48)))
        (br_if $done (i32.gt_u (local.get $c) (i32.const 9)))
        (local.set $v (i32.add (i32.mul (local.get $v) (i32.const 10)) (local.get $c)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $v))

  ;; args splits (p, n) as "TARGET KIND REST" into $t, $k, $r.
  (func $args (param $p i32) (param $n i32)
    (local $i i32)
    (local.set $i (call $space (local.get $p) (local.get $n)))
    (global.set $t (local.get $p))
    (global.set $t_len (local.get $i))
    (call $skip (local.get $p) (local.get $n) (local.get $i))
    (local.set $p (global.get $r))
    (local.set $n (global.get $r_len))
    (local.set $i (call $space (local.get $p) (local.get $n)))
    (global.set $k (local.get $p))
    (global.set $k2_len (local.get $i))
    (call $skip (local.get $p) (local.get $n) (local.get $i)))

  ;; skip sets $r to what follows index i (and its space) in (p, n).
  (func $skip (param $p i32) (param $n i32) (param $i i32)
    (if (i32.lt_u (local.get $i) (local.get $n))
      (then (local.set $i (i32.add (local.get $i) (i32.const 1)))))
    (global.set $r (i32.add (local.get $p) (local.get $i)))
    (global.set $r_len (i32.sub (local.get $n) (local.get $i))))

  ;; b_start, b_add, b_num: build a string at the top of the heap.
  (func $b_start
    (global.set $b (call $alloc (i32.const 0)))
    (global.set $b_len (i32.const 0)))
  (func $b_add (param $p i32) (param $n i32)
    (call $ensure (i32.add (i32.add (global.get $b) (global.get $b_len)) (local.get $n)))
    (memory.copy (i32.add (global.get $b) (global.get $b_len)) (local.get $p) (local.get $n))
    (global.set $b_len (i32.add (global.get $b_len) (local.get $n)))
    (global.set $heap (i32.add (global.get $b) (global.get $b_len))))
  (func $b_num (param $v i32)
    (local $i i32)
    ;; digits backwards into scratch 720..735, then appended
    (local.set $i (i32.const 736))
    (loop $next
      (local.set $i (i32.sub (local.get $i) (i32.const 1)))
      (i32.store8 (local.get $i) (i32.add (i32.const 48) (i32.rem_u (local.get $v) (i32.const 10))))
      (local.set $v (i32.div_u (local.get $v) (i32.const 10)))
      (br_if $next (local.get $v)))
    (call $b_add (local.get $i) (i32.sub (i32.const 736) (local.get $i))))

  ;; read_child reads call i's result into $res, $res_len, $res_code.
  (func $read_child (param $i i32)
    (global.set $res_len (call $child (local.get $i) (i32.const 0) (i32.const 0)))
    (global.set $res (call $alloc (global.get $res_len)))
    (drop (call $child (local.get $i) (global.get $res) (global.get $res_len)))
    (global.set $res_code (call $child_code (local.get $i))))

  ;; forward_res replies with $res or fails with its code and message.
  (func $forward_res
    (if (global.get $res_code)
      (then (call $fail (global.get $res_code) (global.get $res) (global.get $res_len)))
      (else (call $reply (global.get $res) (global.get $res_len)))))

  ;; ---- explicit style ----

  (func $do_call
    (local $n i32) (local $p i32)
    (if (i32.eqz (call $calls))
      (then
        (call $args (global.get $in) (global.get $in_len))
        (call $call (global.get $t) (global.get $t_len) (global.get $k) (global.get $k2_len)
          (global.get $r) (global.get $r_len) (i32.const 288) (i32.const 6))
        (return)))
    (local.set $p (call $alloc (i32.const 16)))
    (local.set $n (call $cont (local.get $p) (i32.const 16)))
    (if (i32.eqz (call $eq (local.get $p) (local.get $n) (i32.const 288) (i32.const 6)))
      (then (call $fail (i32.const 100) (i32.const 304) (i32.const 30)) (return)))
    (call $read_child (i32.sub (call $calls) (i32.const 1)))
    (call $forward_res))

  (func $do_catch
    (if (i32.eqz (call $calls))
      (then
        (call $args (global.get $in) (global.get $in_len))
        (call $call (global.get $t) (global.get $t_len) (global.get $k) (global.get $k2_len)
          (global.get $r) (global.get $r_len) (i32.const 0) (i32.const 0))
        (return)))
    (call $read_child (i32.const 0))
    (call $b_start)
    (if (global.get $res_code)
      (then
        (call $b_add (i32.const 352) (i32.const 7))
        (call $b_num (global.get $res_code))
        (call $b_add (i32.const 368) (i32.const 2)))
      (else (call $b_add (i32.const 336) (i32.const 4))))
    (call $b_add (global.get $res) (global.get $res_len))
    (call $reply (global.get $b) (global.get $b_len)))

  ;; pattern byte i of kind "cont"
  (func $pattern (param $i i32) (result i32)
    (i32.and (i32.add (i32.mul (local.get $i) (i32.const 7)) (i32.const 3)) (i32.const 255)))

  (func $do_cont
    (local $i i32) (local $n i32) (local $p i32) (local $got i32)
    (local.set $i (call $space (global.get $in) (global.get $in_len)))
    (call $skip (global.get $in) (global.get $in_len) (local.get $i))
    (local.set $n (call $num (global.get $r) (global.get $r_len)))
    (if (i32.eqz (call $calls))
      (then
        (local.set $p (call $alloc (local.get $n)))
        (local.set $i (i32.const 0))
        (block $done
          (loop $fill
            (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
            (i32.store8 (i32.add (local.get $p) (local.get $i)) (call $pattern (local.get $i)))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $fill)))
        (call $call (global.get $in) (call $space (global.get $in) (global.get $in_len))
          (i32.const 64) (i32.const 4) (i32.const 448) (i32.const 1) (local.get $p) (local.get $n))
        (return)))
    (local.set $got (call $cont (i32.const 0) (i32.const 0)))
    (local.set $p (call $alloc (local.get $got)))
    (drop (call $cont (local.get $p) (local.get $got)))
    (if (i32.ne (local.get $got) (local.get $n))
      (then (call $fail (i32.const 100) (i32.const 384) (i32.const 33)) (return)))
    (local.set $i (i32.const 0))
    (block $done
      (loop $check
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (if (i32.ne (i32.load8_u (i32.add (local.get $p) (local.get $i))) (call $pattern (local.get $i)))
          (then (call $fail (i32.const 100) (i32.const 384) (i32.const 33)) (return)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $check)))
    (call $b_start)
    (call $b_add (i32.const 432) (i32.const 8))
    (call $b_num (local.get $n))
    (call $reply (global.get $b) (global.get $b_len)))

  ;; ---- sequential style by replay ----

  ;; fnv_bytes folds (p, n) into FNV-1a 64 state h.
  (func $fnv_bytes (param $h i64) (param $p i32) (param $n i32) (result i64)
    (local $i i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $h (i64.mul
          (i64.xor (local.get $h) (i64.load8_u (i32.add (local.get $p) (local.get $i))))
          (i64.const 0x100000001b3)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $h))

  ;; fingerprint: FNV-1a 64 over target, 0x00, kind, 0x00, input.
  (func $fingerprint (param $t i32) (param $tl i32) (param $k i32) (param $kl i32)
                     (param $i i32) (param $il i32) (result i64)
    (local $h i64)
    (local.set $h (call $fnv_bytes (i64.const 0xcbf29ce484222325) (local.get $t) (local.get $tl)))
    (local.set $h (i64.mul (local.get $h) (i64.const 0x100000001b3)))
    (local.set $h (call $fnv_bytes (local.get $h) (local.get $k) (local.get $kl)))
    (local.set $h (i64.mul (local.get $h) (i64.const 0x100000001b3)))
    (call $fnv_bytes (local.get $h) (local.get $i) (local.get $il)))

  ;; seq_begin checks the continuation against calls(); 0 if it is malformed
  ;; (then the step has failed).
  (func $seq_begin (result i32)
    (local $n i32)
    (global.set $s_fin (call $calls))
    (global.set $s_next (i32.const 0))
    (global.set $s_bad (i32.const 0))
    (global.set $s_pend (i32.const 0))
    (local.set $n (call $cont (i32.const 0) (i32.const 0)))
    (global.set $s_cont (call $alloc (local.get $n)))
    (drop (call $cont (global.get $s_cont) (local.get $n)))
    (if (i32.and
          (i32.eq (local.get $n)
            (select (i32.add (i32.const 4) (i32.shl (global.get $s_fin) (i32.const 3))) (i32.const 0)
              (global.get $s_fin)))
          (i32.or (i32.eqz (global.get $s_fin))
            (i32.eq (i32.load (global.get $s_cont)) (i32.load (i32.const 464)))))
      (then (return (i32.const 1))))
    (call $fail (i32.const 3) (i32.const 528) (i32.const 57))
    (i32.const 0))

  ;; seq_call makes the handler's next call. 1: the result is in $res*;
  ;; 0: no result (suspended or the replay differs): return at once.
  (func $seq_call (param $t i32) (param $tl i32) (param $k i32) (param $kl i32)
                  (param $in i32) (param $il i32) (result i32)
    (local $i i32) (local $fp i64)
    (if (i32.or (global.get $s_bad) (global.get $s_pend)) (then (return (i32.const 0))))
    (local.set $i (global.get $s_next))
    (global.set $s_next (i32.add (local.get $i) (i32.const 1)))
    (local.set $fp (call $fingerprint (local.get $t) (local.get $tl) (local.get $k) (local.get $kl)
      (local.get $in) (local.get $il)))
    (if (i32.lt_u (local.get $i) (global.get $s_fin))
      (then
        (if (i64.ne (local.get $fp)
              (i64.load (i32.add (global.get $s_cont) (i32.add (i32.const 4) (i32.shl (local.get $i) (i32.const 3))))))
          (then
            (global.set $s_bad (i32.add (local.get $i) (i32.const 1)))
            (return (i32.const 0))))
        (call $read_child (local.get $i))
        (return (i32.const 1))))
    (global.set $s_pend (i32.const 1))
    (global.set $p_t (local.get $t)) (global.set $p_tl (local.get $tl))
    (global.set $p_k (local.get $k)) (global.set $p_kl (local.get $kl))
    (global.set $p_i (local.get $in)) (global.set $p_il (local.get $il))
    (global.set $p_fp (local.get $fp))
    (i32.const 0))

  ;; seq_end ends a step whose handler stopped early: the replay failure, or
  ;; the pending call with the continuation extended by its fingerprint.
  (func $seq_end
    (local $c i32) (local $n i32)
    (if (global.get $s_bad)
      (then
        (call $b_start)
        (call $b_add (i32.const 480) (i32.const 32))
        (call $b_num (i32.sub (global.get $s_bad) (i32.const 1)))
        (call $fail (i32.const 3) (global.get $b) (global.get $b_len))
        (return)))
    (local.set $n (i32.add (i32.const 12) (i32.shl (global.get $s_fin) (i32.const 3))))
    (local.set $c (call $alloc (local.get $n)))
    (i32.store (local.get $c) (i32.load (i32.const 464)))
    (if (global.get $s_fin)
      (then (memory.copy (i32.add (local.get $c) (i32.const 4)) (i32.add (global.get $s_cont) (i32.const 4))
        (i32.shl (global.get $s_fin) (i32.const 3)))))
    (i64.store (i32.add (local.get $c) (i32.sub (local.get $n) (i32.const 8))) (global.get $p_fp))
    (call $call (global.get $p_t) (global.get $p_tl) (global.get $p_k) (global.get $p_kl)
      (global.get $p_i) (global.get $p_il) (local.get $c) (local.get $n)))

  ;; seq: a = call(T, K, REST); b = call(T, K, a); reply a|b.
  (func $do_seq
    (local $a i32) (local $al i32)
    (if (i32.eqz (call $seq_begin)) (then (return)))
    (call $args (global.get $in) (global.get $in_len))
    (block $stop
      (br_if $stop (i32.eqz (call $seq_call (global.get $t) (global.get $t_len) (global.get $k) (global.get $k2_len)
        (global.get $r) (global.get $r_len))))
      (if (global.get $res_code) (then (call $forward_res) (return)))
      (local.set $a (global.get $res)) (local.set $al (global.get $res_len))
      (br_if $stop (i32.eqz (call $seq_call (global.get $t) (global.get $t_len) (global.get $k) (global.get $k2_len)
        (local.get $a) (local.get $al))))
      (if (global.get $res_code) (then (call $forward_res) (return)))
      (call $b_start)
      (call $b_add (local.get $a) (local.get $al))
      (call $b_add (i32.const 656) (i32.const 1))
      (call $b_add (global.get $res) (global.get $res_len))
      (call $reply (global.get $b) (global.get $b_len))
      (return))
    (call $seq_end))

  ;; loop: N calls with inputs "0".."N-1", results joined by ",".
  (func $do_loop
    (local $n i32) (local $i i32) (local $list i32) (local $arg i32) (local $argl i32)
    (if (i32.eqz (call $seq_begin)) (then (return)))
    (call $args (global.get $in) (global.get $in_len))
    (local.set $n (call $num (global.get $r) (global.get $r_len)))
    (local.set $list (call $alloc (i32.shl (local.get $n) (i32.const 3)))) ;; (ptr, len) per result
    (block $stop
      (block $done
        (loop $next
          (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
          (call $b_start)
          (call $b_num (local.get $i))
          (local.set $arg (global.get $b)) (local.set $argl (global.get $b_len))
          (br_if $stop (i32.eqz (call $seq_call (global.get $t) (global.get $t_len) (global.get $k) (global.get $k2_len)
            (local.get $arg) (local.get $argl))))
          (if (global.get $res_code) (then (call $forward_res) (return)))
          (i32.store (i32.add (local.get $list) (i32.shl (local.get $i) (i32.const 3))) (global.get $res))
          (i32.store (i32.add (local.get $list) (i32.add (i32.shl (local.get $i) (i32.const 3)) (i32.const 4))) (global.get $res_len))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $next)))
      (call $b_start)
      (local.set $i (i32.const 0))
      (block $joined
        (loop $join
          (br_if $joined (i32.ge_u (local.get $i) (local.get $n)))
          (if (local.get $i) (then (call $b_add (i32.const 672) (i32.const 1))))
          (call $b_add
            (i32.load (i32.add (local.get $list) (i32.shl (local.get $i) (i32.const 3))))
            (i32.load (i32.add (local.get $list) (i32.add (i32.shl (local.get $i) (i32.const 3)) (i32.const 4)))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $join)))
      (call $reply (global.get $b) (global.get $b_len))
      (return))
    (call $seq_end))

  ;; nondet breaks the replay rule on purpose: its input is calls().
  (func $do_nondet
    (if (i32.eqz (call $seq_begin)) (then (return)))
    (call $args (global.get $in) (global.get $in_len))
    (call $b_start)
    (call $b_num (call $calls))
    (if (call $seq_call (global.get $t) (global.get $t_len) (global.get $k) (global.get $k2_len)
          (global.get $b) (global.get $b_len))
      (then (call $forward_res) (return)))
    (call $seq_end))

  ;; ---- the step ----

  (func (export "tsubame_step")
    (local $i i32) (local $n i32) (local $p i32) (local $sum i32)
    (global.set $heap (i32.const 4096))
    (global.set $k_len (call $kind (i32.const 0) (i32.const 64)))
    (global.set $in_len (call $input (i32.const 0) (i32.const 0)))
    (global.set $in (call $alloc (global.get $in_len)))
    (drop (call $input (global.get $in) (global.get $in_len)))

    (if (call $is_kind (i32.const 64) (i32.const 4))
      (then (call $reply (global.get $in) (global.get $in_len)) (return)))
    (if (call $is_kind (i32.const 80) (i32.const 5))
      (then
        (call $b_start)
        (call $b_add (i32.const 272) (i32.const 7))
        (call $b_add (global.get $in) (global.get $in_len))
        (call $reply (global.get $b) (global.get $b_len))
        (return)))
    (if (call $is_kind (i32.const 96) (i32.const 4))
      (then
        (local.set $i (call $space (global.get $in) (global.get $in_len)))
        (call $skip (global.get $in) (global.get $in_len) (local.get $i))
        (call $fail (call $num (global.get $in) (local.get $i)) (global.get $r) (global.get $r_len))
        (return)))
    (if (call $is_kind (i32.const 112) (i32.const 4)) (then (call $do_call) (return)))
    (if (call $is_kind (i32.const 128) (i32.const 5)) (then (call $do_catch) (return)))
    (if (call $is_kind (i32.const 144) (i32.const 4)) (then (call $do_cont) (return)))
    (if (call $is_kind (i32.const 160) (i32.const 3)) (then (call $do_seq) (return)))
    (if (call $is_kind (i32.const 176) (i32.const 4)) (then (call $do_loop) (return)))
    (if (call $is_kind (i32.const 192) (i32.const 6)) (then (call $do_nondet) (return)))
    (if (call $is_kind (i32.const 208) (i32.const 3))
      (then
        (local.set $i (call $space (global.get $in) (global.get $in_len)))
        (call $skip (global.get $in) (global.get $in_len) (local.get $i))
        (call $log (call $num (global.get $in) (local.get $i)) (global.get $r) (global.get $r_len))
        (call $reply (i32.const 592) (i32.const 6))
        (return)))
    (if (call $is_kind (i32.const 224) (i32.const 3))
      (then
        (local.set $n (call $num (global.get $in) (global.get $in_len)))
        (local.set $p (call $alloc (local.get $n)))
        (block $done
          (loop $fill
            (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
            (i32.store8 (i32.add (local.get $p) (local.get $i))
              (i32.add (i32.const 97) (i32.rem_u (local.get $i) (i32.const 26))))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $fill)))
        (call $reply (local.get $p) (local.get $n))
        (return)))
    (if (call $is_kind (i32.const 240) (i32.const 4))
      (then
        (block $done
          (loop $add
            (br_if $done (i32.ge_u (local.get $i) (global.get $in_len)))
            (local.set $sum (i32.add (local.get $sum) (i32.load8_u (i32.add (global.get $in) (local.get $i)))))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $add)))
        (call $b_start)
        (call $b_num (global.get $in_len))
        (call $b_add (i32.const 688) (i32.const 1))
        (call $b_num (local.get $sum))
        (call $reply (global.get $b) (global.get $b_len))
        (return)))
    (if (call $is_kind (i32.const 256) (i32.const 4)) (then (unreachable)))
    ;; anything else: 404 no handler for kind "KIND"
    (call $b_start)
    (call $b_add (i32.const 608) (i32.const 21))
    (call $b_add (i32.const 0) (global.get $k_len))
    (call $b_add (i32.const 640) (i32.const 1))
    (call $fail (i32.const 404) (global.get $b) (global.get $b_len))))
