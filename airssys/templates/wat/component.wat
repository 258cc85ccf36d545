;; {{name}}: an airssys component in the WebAssembly text format. It answers every
;; message with the message itself (the payload, multicodec prefix and all, so the
;; reply is in the request's codec).
;;
;; The component exports `airssys:component/handler@0.1.0` (wit/airssys.wit):
;;   handle-message: func(sender: string, payload: list<u8>)
;;                   -> result<option<list<u8>>, string>
;; lowered to the core function below (canonical ABI): the sender's and the payload's
;; pointer and length in, a pointer to the result out:
;;   byte 0: 0 = ok, 1 = err;  ok: byte 4: 0 = none, 1 = some, then pointer, length
;;   at 8 and 12;  err: the message's pointer and length at 4 and 8.
(component
  (core module $m
    (memory (export "memory") 1)
    (global $heap (mut i32) (i32.const 1024))
    ;; a bump allocator for the host's copies in and the result; reset after every call
    (func $realloc (export "realloc")
      (param $old i32) (param $old_size i32) (param $align i32) (param $size i32) (result i32)
      (local $p i32) (local $end i32) (local $have i32)
      (local.set $p (i32.and (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
                             (i32.sub (i32.const 0) (local.get $align))))
      (local.set $end (i32.add (local.get $p) (local.get $size)))
      (local.set $have (i32.shl (memory.size) (i32.const 16)))
      (if (i32.gt_u (local.get $end) (local.get $have))
        (then
          (if (i32.eq (memory.grow (i32.shr_u (i32.add (i32.sub (local.get $end) (local.get $have))
                                                       (i32.const 65535)) (i32.const 16)))
                      (i32.const -1))
            (then unreachable))))
      (global.set $heap (local.get $end))
      (local.get $p))
    ;; post-return: the host has read the result, so the heap is free again
    (func (export "post") (param i32) (global.set $heap (i32.const 1024)))
    (func (export "handle-message")
      (param $sender i32) (param $sender_len i32) (param $payload i32) (param $payload_len i32)
      (result i32)
      (local $r i32)
      (local.set $r (call $realloc (i32.const 0) (i32.const 0) (i32.const 4) (i32.const 16)))
      (i32.store8 (local.get $r) (i32.const 0))            ;; ok
      (i32.store8 offset=4 (local.get $r) (i32.const 1))   ;; some
      (i32.store offset=8 (local.get $r) (local.get $payload))
      (i32.store offset=12 (local.get $r) (local.get $payload_len))
      (local.get $r))
  )
  (core instance $i (instantiate $m))
  (func $handle (param "sender" string) (param "payload" (list u8))
                (result (result (option (list u8)) (error string)))
    (canon lift (core func $i "handle-message") (memory (core memory $i "memory"))
      (realloc (core func $i "realloc")) (post-return (core func $i "post"))))
  (instance $handler (export "handle-message" (func $handle)))
  (export "airssys:component/handler@0.1.0" (instance $handler))
)
