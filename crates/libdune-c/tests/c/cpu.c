/*
 * cpu.c - libdune/cpu-x86.h, mmu-x86.h and local.h in Dune mode: a T_DIVIDE handler
 * (as the original's test/hello.c), MSRs through rdmsrl/wrmsrl and the asm pieces
 * they are made of, rdtscll, the control registers and EFER against the CR0_, CR4_
 * and EFER_ bits, the live GDT, IDT and task register against GD_*, NR_GDT_ENTRIES,
 * SEG64, struct tptr and struct idtd, load_cr3 with a root address or a
 * guest-physical address, a PCID and CR3_NOFLUSH, the default ring-3 FS base, and
 * __str. Prints "ok cpu" on success, exits 1 at the first failed check.
 */
#include <asm/prctl.h>
#include <pthread.h>
#include <string.h>

#include "libdune/dune.h"
#include "libdune/cpu-x86.h"
#include "libdune/local.h"
#include "check.h"

/* eax = 7 / 0 (div %ecx, 2 bytes); the handler sets rax and skips the div. */
extern long probe_div(void);
__asm__(".text\n"
		".globl probe_div\n"
		"probe_div:\n"
		"	mov $7, %eax\n"
		"	xor %edx, %edx\n"
		"	xor %ecx, %ecx\n"
		"	div %ecx\n"
		"	ret\n");

static volatile int div_count;

static void on_divide(struct dune_tf *tf)
{
	div_count++;
	tf->rax = 42;
	tf->rip += 2;
}

static uint64_t read_cr(int n)
{
	uint64_t v = 0;
	if (n == 0)
		__asm__ volatile("mov %%cr0, %0" : "=r"(v));
	else if (n == 3)
		__asm__ volatile("mov %%cr3, %0" : "=r"(v));
	else if (n == 4)
		__asm__ volatile("mov %%cr4, %0" : "=r"(v));
	return v;
}

/* rdmsr and wrmsr written with the header's pieces, as native_read_msr is. */
static uint64_t my_rdmsr(unsigned int msr)
{
	DECLARE_ARGS(val, low, high);
	__asm__ volatile("rdmsr" : EAX_EDX_RET(val, low, high) : "c"(msr));
	return EAX_EDX_VAL(val, low, high);
}

static void my_wrmsr(unsigned int msr, uint64_t v)
{
	unsigned low = (uint32_t)v, high = (uint32_t)(v >> 32);
	__asm__ volatile("wrmsr" : : "c"(msr), EAX_EDX_ARGS(val, low, high) : "memory");
}

static unsigned long thread_fs, thread_user_fs;

static void *thread_main(void *arg)
{
	(void)arg;
	rdmsrl(MSR_FS_BASE, thread_fs);
	thread_user_fs = dune_get_user_fs();
	return NULL;
}

int main(void)
{
	CHECK(dune_get_user_fs() == 0); /* outside Dune mode */
	ENTER();

	/* As test/hello.c: a divide error caught in ring 0. */
	CHECK(dune_register_intr_handler(T_DIVIDE, on_divide) == 0);
	long r = probe_div();
	CHECKF(r == 42 && div_count == 1, "probe_div %ld after %d traps", r, div_count);

	/* MSRs: the FS base is the thread's, GS base the runtime's per-vCPU block. */
	unsigned long fs = 0, gs = 0, arch_fs = 0;
	rdmsrl(MSR_FS_BASE, fs);
	rdmsrl(MSR_GS_BASE, gs);
	CHECK(arch_prctl(ARCH_GET_FS, &arch_fs) == 0);
	CHECKF(fs == arch_fs && fs != 0, "FS base %#lx, arch_prctl %#lx", fs, arch_fs);
	CHECK(gs != 0 && gs != fs);
	CHECK(native_read_msr(MSR_FS_BASE) == fs && my_rdmsr(MSR_FS_BASE) == fs);
	u64 kgs = 0;
	rdmsrl(MSR_KERNEL_GS_BASE, kgs);
	wrmsrl(MSR_KERNEL_GS_BASE, 0x123456789000UL);
	CHECK(native_read_msr(MSR_KERNEL_GS_BASE) == 0x123456789000UL);
	my_wrmsr(MSR_KERNEL_GS_BASE, 0x987654321000UL);
	CHECK(my_rdmsr(MSR_KERNEL_GS_BASE) == 0x987654321000UL);
	wrmsrl(MSR_KERNEL_GS_BASE, kgs);
	u64 lstar = 0;
	rdmsrl(MSR_LSTAR, lstar);
	CHECK(lstar != 0);

	/* The time-stamp counter. */
	unsigned long t0 = rdtscll(), t1 = dune_get_ticks(), t2 = rdtscll();
	CHECK(t0 <= t1 && t1 <= t2);

	/* Control registers and EFER: long mode with paging. */
	uint64_t cr0 = read_cr(0), cr4 = read_cr(4), efer = native_read_msr(EFER);
	CHECKF((cr0 & (CR0_PE | CR0_PG | CR0_WP)) == (CR0_PE | CR0_PG | CR0_WP), "cr0 %#lx", (unsigned long)cr0);
	CHECKF((cr4 & (CR4_PAE | CR4_OSFXSR | CR4_OSX)) == (CR4_PAE | CR4_OSFXSR | CR4_OSX), "cr4 %#lx", (unsigned long)cr4);
	CHECK(!(cr4 & CR4_TSD));
	CHECKF((efer & (EFER_LME | EFER_LMA | EFER_NXE | EFER_SCE)) == (EFER_LME | EFER_LMA | EFER_NXE | EFER_SCE), "efer %#lx",
		   (unsigned long)efer);

	/* The live GDT: its size, the kernel code descriptor, and the selectors in use. */
	struct tptr gdtr, idtr;
	__asm__ volatile("sgdt %0" : "=m"(gdtr));
	__asm__ volatile("sidt %0" : "=m"(idtr));
	CHECKF(gdtr.limit == NR_GDT_ENTRIES * 8 - 1, "GDT limit %u", gdtr.limit);
	const uint64_t *gdt = (const uint64_t *)gdtr.base;
	CHECKF(gdt[GD_KT >> 3] == SEG64(SEG_X | SEG_R, 0), "kernel code %#lx", (unsigned long)gdt[GD_KT >> 3]);
	CHECK(gdt[GD_UT >> 3] == SEG64(SEG_X | SEG_R, 3));
	/* The TSS descriptor (available, or busy after ltr) and the TSS it points to. */
	uint64_t tss_lo = gdt[GD_TSS >> 3], tss_type = tss_lo & (UINT64(0xf) << 40);
	CHECK((tss_lo & SEG_P) && (tss_type == SEG_TSSA || tss_type == SEG_TSSB));
	uintptr_t tss_base = ((tss_lo >> 16) & 0xffffff) | ((tss_lo >> 32) & 0xff000000) | (gdt[GD_TSS2 >> 3] << 32);
	CHECK(SEG_BASEHI(tss_base) == gdt[GD_TSS2 >> 3]);
	CHECK((tss_lo & SEG_BASELO(~0UL)) == SEG_BASELO(tss_base));
	const struct Tss *tss = (const struct Tss *)tss_base;
	CHECKF(tss->tss_ist[1] != 0 && tss->tss_iomb >= sizeof(struct Tss), "IST1 %#lx, I/O map base %u",
		   (unsigned long)tss->tss_ist[1], tss->tss_iomb);
	uint16_t cs, tr;
	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	__asm__ volatile("str %0" : "=r"(tr));
	CHECK(cs == GD_KT && tr == GD_TSS);

	/* The live IDT: gates in the runtime's code segment, present, interrupt gates. */
	CHECK(idtr.limit == IDT_ENTRIES * sizeof(struct idtd) - 1);
	const struct idtd *idt = (const struct idtd *)idtr.base;
	for (int v = 0; v < IDT_ENTRIES; v++) {
		uint64_t target = idt[v].low | (uint64_t)idt[v].middle << 16 | (uint64_t)idt[v].high << 32;
		CHECKF(idt[v].selector == GD_KT && (idt[v].type & IDTD_P) && (idt[v].type & 0xf) == IDTD_INTERRUPT_GATE && target != 0 &&
				   idt[v].ist != 0 && idt[v].zero == 0,
			   "vector %d: selector %#x type %#x ist %d", v, idt[v].selector, idt[v].type, idt[v].ist);
	}
	CHECK(idt[T_BRKPT].type & IDTD_CPL3); /* int3 works from ring 3 */

	/* load_cr3: a clone by its address with a PCID and CR3_NOFLUSH, then pgroot by its
	 * guest-physical address; without PCID support the extra bits are dropped. */
	ptent_t *clone = dune_vm_clone(pgroot);
	CHECK(clone != NULL);
	uint64_t own = read_cr(3);
	CHECK(PTE_ADDR(own) == dune_va_to_pa(pgroot));
	load_cr3((unsigned long)clone | CR3_NOFLUSH | 1);
	CHECKF(PTE_ADDR(read_cr(3)) == dune_va_to_pa(clone), "cr3 %#lx, clone at %#lx", (unsigned long)read_cr(3),
		   (unsigned long)dune_va_to_pa(clone));
	CHECK(probe_div() == 42); /* traps work under the clone */
	load_cr3(dune_va_to_pa(pgroot) | CR3_NOFLUSH);
	CHECK(PTE_ADDR(read_cr(3)) == dune_va_to_pa(pgroot));
	load_cr3(dune_va_to_pa(clone));
	CHECK(PTE_ADDR(read_cr(3)) == dune_va_to_pa(clone));
	load_cr3((unsigned long)pgroot);
	CHECK(PTE_ADDR(read_cr(3)) == dune_va_to_pa(pgroot));
	dune_vm_free(clone);

	/* Ring 3's FS base: the thread's own until set, in each thread. */
	CHECK(dune_get_user_fs() == fs);
	pthread_t t;
	CHECK(pthread_create(&t, NULL, thread_main, NULL) == 0);
	CHECK(pthread_join(t, NULL) == 0);
	CHECKF(thread_fs != 0 && thread_fs != fs && thread_user_fs == thread_fs, "thread FS %#lx, its user FS %#lx", thread_fs,
		   thread_user_fs);
	dune_set_user_fs(0x7000);
	CHECK(dune_get_user_fs() == 0x7000);
	dune_set_user_fs(fs);

	CHECK(strcmp(__str(GD_KT), "0x08") == 0);

	printf("ok cpu\n");
	return 0;
}
