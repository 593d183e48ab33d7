@ SHA-256 block compression for ARMv7-M and ARMv8-M Mainline (Thumb-2).
@
@ void fwsign_sha256_compress_armv7m(uint32_t state[8], const uint8_t *blocks, size_t count)
@ count must be at least 1; `blocks` needs no alignment (single-word loads only).
@
@ Registers: the working variables a..h live in r4-r11 for the whole block; their names
@ rotate from round to round instead of moving values. r0-r2 are scratch, with the message
@ word W[i] in r2 when a round starts. r3 and r12 alternate as a^b of this round and b^c of
@ the previous one, so Maj costs three instructions. In rounds 0-15 lr points into the
@ block (W is loaded, byte-swapped and saved as it is used) and the round constants are
@ literal-pool loads; in rounds 16-63 lr walks the round constant table, whose 256-byte
@ alignment ends the loop.
@ The rotations are folded into shifted operands: Sigma1(e) = ror(e ^ ror(e,5) ^ ror(e,19), 6)
@ and Sigma0(a) = ror(a ^ ror(a,11) ^ ror(a,20), 2), three instructions each.
@
@ Stack frame: W[0..15] (a ring buffer for the message schedule) at sp+0, then the state
@ pointer (sp+64), the next block (sp+68) and the blocks left (sp+72).

    .syntax unified
    .thumb

@ One round, with W[i] in r2 and K[i] in r0: h += Sigma1(e) + Ch(e,f,g) + K[i] + W[i];
@ d += h; h += Sigma0(a) + Maj(a,b,c). xn receives a^b, xp holds b^c from the previous round.
.macro ROUND a, b, c, d, e, f, g, h, xn, xp
    add     \h, \h, r2
    eor     r1, \f, \g
    add     \h, \h, r0
    and     r1, r1, \e
    eor     r0, \e, \e, ror #5
    eor     r1, r1, \g
    eor     r0, r0, \e, ror #19
    add     \h, \h, r1
    add     \h, \h, r0, ror #6
    add     \d, \d, \h
    eor     r0, \a, \a, ror #11
    eor     \xn, \a, \b
    eor     r0, r0, \a, ror #20
    and     r1, \xn, \xp
    add     \h, \h, r0, ror #2
    eor     r1, r1, \b
    add     \h, \h, r1
.endm

@ Message schedule, W[i] = sigma1(W[i-2]) + W[i-7] + sigma0(W[i-15]) + W[i-16], into r2 and
@ its ring slot. t is a free register (the next round's xn).
@ sigma0(x) = ror(x ^ ror(x,11), 7) ^ (x >> 3); sigma1(x) = ror(x ^ ror(x,2), 17) ^ (x >> 10).
.macro SCHEDULE i, t
    .if ((\i) & 15) == 15
    ldr     r2, [sp, #60]
    ldr     r0, [sp, #0]
    .else
    ldrd    r2, r0, [sp, #(((\i) & 15) * 4)]
    .endif
    ldr     r1, [sp, #((((\i) + 14) & 15) * 4)]
    ldr     \t, [sp, #((((\i) + 9) & 15) * 4)]
    add     r2, r2, \t
    eor     \t, r0, r0, ror #11
    lsr     r0, r0, #3
    eor     r0, r0, \t, ror #7
    add     r2, r2, r0
    eor     \t, r1, r1, ror #2
    lsr     r1, r1, #10
    eor     r1, r1, \t, ror #17
    add     r2, r2, r1
    str     r2, [sp, #(((\i) & 15) * 4)]
.endm

    .section .text.fwsign_sha256_compress_armv7m, "ax", %progbits
    .global fwsign_sha256_compress_armv7m
    .type   fwsign_sha256_compress_armv7m, %function
    .thumb_func
    .p2align 2
fwsign_sha256_compress_armv7m:
    push    {r4-r11, lr}
    sub     sp, sp, #84
    str     r0, [sp, #64]
    str     r1, [sp, #68]
    str     r2, [sp, #72]
.Lsha256_block:
    ldr     r0, [sp, #64]
    ldm     r0, {r4-r11}
    ldr     lr, [sp, #68]
    eor     r3, r5, r6
    @ Rounds 0-15: W[i] is the block's big-endian word i.
    ldr     r2, [lr, #0]
    ldr     r0, =0x428a2f98
    rev     r2, r2
    str     r2, [sp, #0]
    ROUND   r4, r5, r6, r7, r8, r9, r10, r11, r12, r3
    ldr     r2, [lr, #4]
    ldr     r0, =0x71374491
    rev     r2, r2
    str     r2, [sp, #4]
    ROUND   r11, r4, r5, r6, r7, r8, r9, r10, r3, r12
    ldr     r2, [lr, #8]
    ldr     r0, =0xb5c0fbcf
    rev     r2, r2
    str     r2, [sp, #8]
    ROUND   r10, r11, r4, r5, r6, r7, r8, r9, r12, r3
    ldr     r2, [lr, #12]
    ldr     r0, =0xe9b5dba5
    rev     r2, r2
    str     r2, [sp, #12]
    ROUND   r9, r10, r11, r4, r5, r6, r7, r8, r3, r12
    ldr     r2, [lr, #16]
    ldr     r0, =0x3956c25b
    rev     r2, r2
    str     r2, [sp, #16]
    ROUND   r8, r9, r10, r11, r4, r5, r6, r7, r12, r3
    ldr     r2, [lr, #20]
    ldr     r0, =0x59f111f1
    rev     r2, r2
    str     r2, [sp, #20]
    ROUND   r7, r8, r9, r10, r11, r4, r5, r6, r3, r12
    ldr     r2, [lr, #24]
    ldr     r0, =0x923f82a4
    rev     r2, r2
    str     r2, [sp, #24]
    ROUND   r6, r7, r8, r9, r10, r11, r4, r5, r12, r3
    ldr     r2, [lr, #28]
    ldr     r0, =0xab1c5ed5
    rev     r2, r2
    str     r2, [sp, #28]
    ROUND   r5, r6, r7, r8, r9, r10, r11, r4, r3, r12
    ldr     r2, [lr, #32]
    ldr     r0, =0xd807aa98
    rev     r2, r2
    str     r2, [sp, #32]
    ROUND   r4, r5, r6, r7, r8, r9, r10, r11, r12, r3
    ldr     r2, [lr, #36]
    ldr     r0, =0x12835b01
    rev     r2, r2
    str     r2, [sp, #36]
    ROUND   r11, r4, r5, r6, r7, r8, r9, r10, r3, r12
    ldr     r2, [lr, #40]
    ldr     r0, =0x243185be
    rev     r2, r2
    str     r2, [sp, #40]
    ROUND   r10, r11, r4, r5, r6, r7, r8, r9, r12, r3
    ldr     r2, [lr, #44]
    ldr     r0, =0x550c7dc3
    rev     r2, r2
    str     r2, [sp, #44]
    ROUND   r9, r10, r11, r4, r5, r6, r7, r8, r3, r12
    ldr     r2, [lr, #48]
    ldr     r0, =0x72be5d74
    rev     r2, r2
    str     r2, [sp, #48]
    ROUND   r8, r9, r10, r11, r4, r5, r6, r7, r12, r3
    ldr     r2, [lr, #52]
    ldr     r0, =0x80deb1fe
    rev     r2, r2
    str     r2, [sp, #52]
    ROUND   r7, r8, r9, r10, r11, r4, r5, r6, r3, r12
    ldr     r2, [lr, #56]
    ldr     r0, =0x9bdc06a7
    rev     r2, r2
    str     r2, [sp, #56]
    ROUND   r6, r7, r8, r9, r10, r11, r4, r5, r12, r3
    ldr     r2, [lr, #60]
    ldr     r0, =0xc19bf174
    rev     r2, r2
    str     r2, [sp, #60]
    ROUND   r5, r6, r7, r8, r9, r10, r11, r4, r3, r12
    add     lr, lr, #64
    str     lr, [sp, #68]
    movw    lr, #:lower16:(fwsign_sha256_k + 64)
    movt    lr, #:upper16:(fwsign_sha256_k + 64)
    @ Rounds 16-63: three passes of sixteen, scheduling each W on the way. Sixteen rounds
    @ bring the register names and the r3/r12 alternation back where they started.
.Lsha256_schedule:
    SCHEDULE 16, r12
    ldr     r0, [lr], #4
    ROUND   r4, r5, r6, r7, r8, r9, r10, r11, r12, r3
    SCHEDULE 17, r3
    ldr     r0, [lr], #4
    ROUND   r11, r4, r5, r6, r7, r8, r9, r10, r3, r12
    SCHEDULE 18, r12
    ldr     r0, [lr], #4
    ROUND   r10, r11, r4, r5, r6, r7, r8, r9, r12, r3
    SCHEDULE 19, r3
    ldr     r0, [lr], #4
    ROUND   r9, r10, r11, r4, r5, r6, r7, r8, r3, r12
    SCHEDULE 20, r12
    ldr     r0, [lr], #4
    ROUND   r8, r9, r10, r11, r4, r5, r6, r7, r12, r3
    SCHEDULE 21, r3
    ldr     r0, [lr], #4
    ROUND   r7, r8, r9, r10, r11, r4, r5, r6, r3, r12
    SCHEDULE 22, r12
    ldr     r0, [lr], #4
    ROUND   r6, r7, r8, r9, r10, r11, r4, r5, r12, r3
    SCHEDULE 23, r3
    ldr     r0, [lr], #4
    ROUND   r5, r6, r7, r8, r9, r10, r11, r4, r3, r12
    SCHEDULE 24, r12
    ldr     r0, [lr], #4
    ROUND   r4, r5, r6, r7, r8, r9, r10, r11, r12, r3
    SCHEDULE 25, r3
    ldr     r0, [lr], #4
    ROUND   r11, r4, r5, r6, r7, r8, r9, r10, r3, r12
    SCHEDULE 26, r12
    ldr     r0, [lr], #4
    ROUND   r10, r11, r4, r5, r6, r7, r8, r9, r12, r3
    SCHEDULE 27, r3
    ldr     r0, [lr], #4
    ROUND   r9, r10, r11, r4, r5, r6, r7, r8, r3, r12
    SCHEDULE 28, r12
    ldr     r0, [lr], #4
    ROUND   r8, r9, r10, r11, r4, r5, r6, r7, r12, r3
    SCHEDULE 29, r3
    ldr     r0, [lr], #4
    ROUND   r7, r8, r9, r10, r11, r4, r5, r6, r3, r12
    SCHEDULE 30, r12
    ldr     r0, [lr], #4
    ROUND   r6, r7, r8, r9, r10, r11, r4, r5, r12, r3
    SCHEDULE 31, r3
    ldr     r0, [lr], #4
    ROUND   r5, r6, r7, r8, r9, r10, r11, r4, r3, r12
    tst     lr, #0xff
    bne     .Lsha256_schedule
    @ Add the block's result into the state.
    ldr     r0, [sp, #64]
    ldm     r0, {r1, r2, r3, r12}
    add     r4, r4, r1
    add     r5, r5, r2
    add     r6, r6, r3
    add     r7, r7, r12
    add     r1, r0, #16
    ldm     r1, {r1, r2, r3, r12}
    add     r8, r8, r1
    add     r9, r9, r2
    add     r10, r10, r3
    add     r11, r11, r12
    stm     r0, {r4-r11}
    ldr     r2, [sp, #72]
    subs    r2, r2, #1
    str     r2, [sp, #72]
    bne     .Lsha256_block
    add     sp, sp, #84
    pop     {r4-r11, pc}
    .ltorg
    .size   fwsign_sha256_compress_armv7m, . - fwsign_sha256_compress_armv7m

    .section .rodata.fwsign_sha256_k, "a", %progbits
    .p2align 8
fwsign_sha256_k:
    .word   0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5
    .word   0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5
    .word   0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3
    .word   0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174
    .word   0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc
    .word   0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da
    .word   0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7
    .word   0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967
    .word   0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13
    .word   0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85
    .word   0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3
    .word   0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070
    .word   0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5
    .word   0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3
    .word   0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208
    .word   0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
