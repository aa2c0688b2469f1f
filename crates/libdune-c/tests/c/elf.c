/*
 * elf.c - the ELF helpers in Dune mode: this program's own binary read from its file
 * and from memory (sections, program headers, the dump), its first PT_LOAD segment
 * loaded into the mmap_base window from the file and from memory and compared with
 * the file, and bad images rejected with an error, never a crash: an empty file,
 * every truncation of the binary's first pages, garbage, tables and segments that
 * point past the end, a bad program-header size. Files are memfds (the host's file
 * system is read-only in the test lane). Prints "ok elf" on success, exits 1 at the
 * first failed check.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "libdune/dune.h"
#include "check.h"

static unsigned char *file;
static size_t file_len;
static int n_sections, saw_text, saw_data, saw_shstrtab, n_ph, n_load;
static Elf64_Phdr first_load;

static int on_section(struct dune_elf *elf, const char *name, int num, Elf64_Shdr *sh)
{
	CHECK(elf->priv == (void *)&file_len);
	CHECK(num == n_sections++);
	saw_text |= strcmp(name, ".text") == 0 && sh->sh_type == SHT_PROGBITS && (sh->sh_flags & SHF_EXECINSTR);
	saw_data |= strcmp(name, ".data") == 0;
	saw_shstrtab |= strcmp(name, ".shstrtab") == 0 && sh->sh_type == SHT_STRTAB;
	return 0;
}

static int on_ph(struct dune_elf *elf, Elf64_Phdr *ph)
{
	(void)elf;
	n_ph++;
	if (ph->p_type == PT_LOAD && n_load++ == 0)
		first_load = *ph;
	return 0;
}

static int stop_at_second(struct dune_elf *elf, Elf64_Phdr *ph)
{
	(void)elf;
	(void)ph;
	return ++n_ph == 2 ? 99 : 0;
}

static int count_any_sh(struct dune_elf *elf, const char *name, int num, Elf64_Shdr *sh)
{
	(void)elf;
	(void)num;
	(void)sh;
	CHECK(strlen(name) < 4096);
	return 0;
}

static int count_any_ph(struct dune_elf *elf, Elf64_Phdr *ph)
{
	(void)elf;
	CHECK(ph != NULL);
	return 0;
}

/* A memfd holding bytes [0, len) of buf; its path in *path. */
static int memfile(const unsigned char *buf, size_t len, char *path)
{
	int fd = memfd_create("elf", 0);
	CHECK(fd >= 0);
	CHECK(write(fd, buf, len) == (ssize_t)len);
	sprintf(path, "/proc/self/fd/%d", fd);
	return fd;
}

/* Opens buf[0, len) from a file and from memory and walks it: both must agree, and
 * anything but success must be an error. Returns the open result. */
static int try_image(unsigned char *buf, size_t len)
{
	char path[64];
	int fd = memfile(buf, len, path);
	struct dune_elf a, b;
	int ra = dune_elf_open(&a, path), rb = dune_elf_open_mem(&b, buf, (int)len);
	CHECKF(ra == rb, "length %zu: file %d, memory %d", len, ra, rb);
	CHECK(ra == 0 || ra == -EINVAL || ra == -EIO);
	if (ra == 0) {
		int sa = dune_elf_iter_sh(&a, count_any_sh), sb = dune_elf_iter_sh(&b, count_any_sh);
		int pa = dune_elf_iter_ph(&a, count_any_ph), pb = dune_elf_iter_ph(&b, count_any_ph);
		CHECKF(sa == sb && pa == pb, "length %zu: sections %d/%d, program headers %d/%d", len, sa, sb, pa, pb);
		CHECK(sa == 0 || sa == -EINVAL || sa == -EIO);
		CHECK(pa == 0 || pa == -EINVAL || pa == -EIO);
	}
	CHECK(dune_elf_close(&a) == 0 && dune_elf_close(&b) == 0);
	close(fd);
	return ra;
}

int main(void)
{
	ENTER();

	/* This binary, whole, in memory. */
	int fd = open("/proc/self/exe", O_RDONLY);
	CHECK(fd >= 0);
	file_len = lseek(fd, 0, SEEK_END);
	file = malloc(file_len);
	CHECK(file && pread(fd, file, file_len, 0) == (ssize_t)file_len);
	close(fd);

	/* From its file: sections, program headers, the dump. */
	struct dune_elf elf;
	CHECK(dune_elf_open(&elf, "/proc/self/exe") == 0);
	elf.priv = &file_len;
	CHECK(elf.hdr.e_machine == EM_X86_64 && (elf.hdr.e_type == ET_DYN || elf.hdr.e_type == ET_EXEC));
	CHECK(dune_elf_iter_sh(&elf, on_section) == 0);
	CHECKF(n_sections == elf.hdr.e_shnum && saw_text && saw_data && saw_shstrtab, "%d sections, text %d data %d",
		   n_sections, saw_text, saw_data);
	CHECK(dune_elf_iter_ph(&elf, on_ph) == 0);
	CHECK(n_ph == elf.hdr.e_phnum && n_load >= 2 && elf.phdr != NULL && elf.shdr != NULL);
	n_ph = 0;
	CHECK(dune_elf_iter_ph(&elf, stop_at_second) == 99);
	CHECK(dune_elf_dump(&elf) == 0);

	/* Its first PT_LOAD into the mmap_base window, from the file. */
	Elf64_Phdr ph = first_load;
	off_t off = (off_t)(mmap_base + (1UL << 30)) - (off_t)PGADDR(ph.p_vaddr);
	unsigned char *at = (unsigned char *)(ph.p_vaddr + off);
	CHECK(dune_elf_load_ph(&elf, &ph, off) == 0);
	CHECK(memcmp(at, file + ph.p_offset, ph.p_filesz) == 0);
	for (uint64_t i = ph.p_filesz; i < ph.p_memsz; i++)
		CHECK(at[i] == 0);
	CHECK(dune_va_to_pa(at) != 0);
	CHECK(dune_elf_close(&elf) == 0);
	CHECK(dune_elf_close(&elf) == 0); /* twice: harmless */

	/* The same from memory, a bit further up. */
	CHECK(dune_elf_open_mem(&elf, file, (int)file_len) == 0);
	CHECK(elf.fd == -1 && elf.mem == file);
	off += 1L << 30;
	at = (unsigned char *)(ph.p_vaddr + off);
	CHECK(dune_elf_load_ph(&elf, &ph, off) == 0);
	CHECK(memcmp(at, file + ph.p_offset, ph.p_filesz) == 0);
	/* Refused segments: not PT_LOAD, file size beyond memory size, past the image. */
	Elf64_Phdr bad = ph;
	bad.p_type = PT_NOTE;
	CHECK(dune_elf_load_ph(&elf, &bad, off) == -EINVAL);
	bad = ph;
	bad.p_filesz = bad.p_memsz + 1;
	CHECK(dune_elf_load_ph(&elf, &bad, off) == -EINVAL);
	bad = ph;
	bad.p_offset = file_len - 16;
	bad.p_filesz = 4096;
	bad.p_memsz = 4096;
	CHECK(dune_elf_load_ph(&elf, &bad, off) == -EINVAL);
	CHECK(dune_elf_close(&elf) == 0);

	/* Bad images: missing, empty, truncated, garbage. */
	CHECK(dune_elf_open(&elf, "/nonexistent/elf") == -ENOENT);
	CHECK(dune_elf_close(&elf) == 0);
	CHECK(try_image(file, 0) == -EIO);
	CHECK(try_image(file, 63) == -EIO);
	size_t cut = file_len < 16384 ? file_len : 16384;
	for (size_t n = 64; n < cut; n += 61)
		try_image(file, n);
	/* The section table is at the end: any truncation loses it. */
	{
		struct dune_elf t;
		CHECK(dune_elf_open_mem(&t, file, (int)file_len - 1) == 0);
		CHECK(dune_elf_iter_sh(&t, count_any_sh) == -EINVAL);
		CHECK(dune_elf_close(&t) == 0);
	}
	unsigned char *junk = malloc(8192);
	CHECK(junk != NULL);
	srand(7);
	for (int round = 0; round < 200; round++) {
		memcpy(junk, file, 8192);
		for (int i = 0; i < 64; i++)
			junk[16 + rand() % (8192 - 16)] = (unsigned char)rand();
		if (round % 2) /* the header fields themselves */
			for (int i = 16; i < 64; i++)
				junk[i] = (unsigned char)rand();
		try_image(junk, 8192);
	}
	for (int i = 0; i < 8192; i++)
		junk[i] = (unsigned char)rand();
	CHECK(try_image(junk, 8192) == -EINVAL);
	/* A header that is right but for the size of its program headers. */
	memcpy(junk, file, 8192);
	((Elf64_Ehdr *)junk)->e_phentsize = 55;
	{
		struct dune_elf t;
		CHECK(dune_elf_open_mem(&t, junk, 8192) == 0);
		CHECK(dune_elf_iter_ph(&t, count_any_ph) == -EINVAL);
		CHECK(dune_elf_close(&t) == 0);
	}
	/* From a truncated file, a segment past its end is refused (a mapping would SIGBUS). */
	{
		char path[64];
		size_t keep = ph.p_offset + 100;
		int tfd = memfile(file, keep, path);
		struct dune_elf t;
		CHECK(dune_elf_open(&t, path) == 0);
		Elf64_Phdr p2 = ph;
		if (p2.p_filesz < 200)
			p2.p_filesz = p2.p_memsz = 200;
		CHECK(dune_elf_load_ph(&t, &p2, off) == -EINVAL);
		CHECK(dune_elf_close(&t) == 0);
		close(tfd);
	}

	printf("ok elf\n");
	return 0;
}
