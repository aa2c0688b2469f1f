/*
 * apic.c - the x2APIC helpers: each thread in Dune mode has its own APIC ID; an
 * interrupt sent to oneself runs the vector's handler at once, and again after
 * dune_apic_eoi(); one sent to another thread runs the handler on that thread; an
 * NMI reaches the T_NMI handler; exception vectors are not sent; the routing table
 * of the original's posted_ipi tests (dune_apic_init_rt_entry, libdune/local.h, and
 * dune_apic_id_for_cpu). Prints "ok apic" on success, exits 1 at the first failed
 * check.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include "libdune/dune.h"
#include "libdune/cpu-x86.h"
#include "libdune/local.h"
#include "check.h"

#define VECTOR 0xf2 /* the original's posted_ipi test vector */
#define SPIN   100000000UL

static volatile int ipi_count, nmi_count, thread_ready, thread_got;
static volatile uint32_t handled_on, thread_id = (uint32_t)-1; /* set by the thread */

static void on_ipi(struct dune_tf *tf)
{
	(void)tf;
	ipi_count++;
	handled_on = dune_apic_id();
	if (handled_on == thread_id)
		thread_got = 1;
	dune_apic_eoi();
}

static void on_nmi(struct dune_tf *tf)
{
	(void)tf;
	nmi_count++;
}

static void *thread_main(void *arg)
{
	(void)arg;
	thread_id = dune_apic_id();
	thread_ready = 1;
	for (unsigned long i = 0; i < SPIN && !thread_got; i++)
		__asm__ volatile("pause");
	return NULL;
}

int main(void)
{
	CHECK(dune_apic_id() == (uint32_t)-1); /* outside Dune mode */
	ENTER();

	uint32_t me = dune_apic_id();
	CHECK(me != (uint32_t)-1);
	CHECK(dune_apic_id() == me);

	/* To oneself: the handler runs as soon as interrupts are on, i.e. at once. */
	CHECK(dune_register_intr_handler(VECTOR, on_ipi) == 0);
	dune_apic_send_ipi(VECTOR, me);
	for (unsigned long i = 0; i < SPIN && ipi_count < 1; i++)
		__asm__ volatile("pause");
	CHECKF(ipi_count == 1 && handled_on == me, "%d interrupts, handled on %u", ipi_count, handled_on);
	/* After the EOI the same vector is delivered again. */
	dune_apic_send_ipi(VECTOR, me);
	for (unsigned long i = 0; i < SPIN && ipi_count < 2; i++)
		__asm__ volatile("pause");
	CHECK(ipi_count == 2);

	/* Exception vectors are not sent. */
	dune_apic_send_ipi(T_PGFLT, me);
	dune_apic_send_ipi(T_DIVIDE, me);

	/* An NMI. */
	CHECK(dune_register_intr_handler(T_NMI, on_nmi) == 0);
	dune_apic_send_ipi(T_NMI, me);
	for (unsigned long i = 0; i < SPIN && nmi_count < 1; i++)
		__asm__ volatile("pause");
	CHECK(nmi_count == 1);

	/* To another thread: it has its own ID, and the handler runs there. */
	pthread_t t;
	CHECK(pthread_create(&t, NULL, thread_main, NULL) == 0);
	while (!thread_ready)
		sched_yield();
	CHECKF(thread_id != me && thread_id != (uint32_t)-1, "thread APIC ID %u, main %u", thread_id, me);
	dune_apic_send_ipi(VECTOR, thread_id);
	CHECK(pthread_join(t, NULL) == 0);
	CHECKF(thread_got && ipi_count == 3 && handled_on == thread_id, "thread got %d, %d interrupts", thread_got, ipi_count);

	/* The routing table, as the original's posted_ipi tests use it. */
	int cpu = sched_getcpu();
	CHECK(cpu >= 0);
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	CHECK(sched_setaffinity(0, sizeof(set), &set) == 0);
	bool error = false;
	dune_apic_init_rt_entry();
	CHECK(dune_apic_id_for_cpu(cpu, &error) == me && !error);
	CHECK(dune_apic_id_for_cpu(cpu, NULL) == me);
	CHECK(dune_apic_id_for_cpu(1u << 30, &error) == 0 && error);
	dune_apic_send_ipi(VECTOR, dune_apic_id_for_cpu(cpu, NULL));
	for (unsigned long i = 0; i < SPIN && ipi_count < 4; i++)
		__asm__ volatile("pause");
	CHECK(ipi_count == 4 && nmi_count == 1);

	printf("ok apic\n");
	return 0;
}
