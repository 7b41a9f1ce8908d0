/* SPDX-License-Identifier: MIT */
/*
 * The test guest: a boot sector that enters 32-bit flat protected mode and
 * sweeps a hot set of guest RAM forever.  Sweep n (1, 2, ...) writes the
 * 32-bit value n at offset 0 of every page of the hot set, in address order,
 * so at any instant the hot set holds n in its first pages and n - 1 in the
 * rest: a copy of it can be checked for pages left behind.
 *
 * Three 32-bit parameters sit at fixed offsets of the image; a test may
 * patch them (tests/integration/qemutest.py does):
 *   0x1f0  first byte of the hot set (default 16 MiB; page aligned)
 *   0x1f4  pages in the hot set (default 16384: 64 MiB)
 *   0x1f8  spin-loop turns after each page write (default 0: full speed;
 *          a slow guest for throttling measurements)
 * Interrupts stay off: nothing but this loop writes guest RAM.
 */
	.code16
	.text
	.globl _start
_start:
	cli
	xor %ax, %ax
	mov %ax, %ds
	/* Address lines above 1 MiB: the "fast A20" gate. */
	in $0x92, %al
	or $2, %al
	and $0xfe, %al
	out %al, $0x92
	lgdt gdt_desc
	mov %cr0, %eax
	or $1, %eax
	mov %eax, %cr0
	ljmp $0x08, $pm32

	.code32
pm32:
	mov $0x10, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	xor %ecx, %ecx
sweep:
	inc %ecx
	mov hot_start, %edi
	mov hot_pages, %edx
page:
	mov %ecx, (%edi)
	mov spin, %esi
1:	test %esi, %esi
	jz 2f
	dec %esi
	jmp 1b
2:	add $4096, %edi
	dec %edx
	jnz page
	jmp sweep

	.p2align 3
gdt:
	.quad 0
	.quad 0x00cf9a000000ffff /* 0x08: code, base 0, 4 GiB, 32-bit */
	.quad 0x00cf92000000ffff /* 0x10: data, base 0, 4 GiB */
gdt_desc:
	.word gdt_desc - gdt - 1
	.long gdt

	.org 0x1f0
hot_start:
	.long 0x01000000
hot_pages:
	.long 16384
spin:
	.long 0
	.org 510
	.word 0xaa55
