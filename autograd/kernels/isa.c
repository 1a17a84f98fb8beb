/*
 * isa.c — which instruction-set level's kernels run (sg_kernels.h).
 *
 * When the library loads, a constructor reads the CPU's features and picks
 * the best level that both the CPU and this build have:
 *
 *   avx512   AVX-512 F, VL, BW, DQ, CD + AVX2, FMA   (in x86-64-v4)
 *   avx2     AVX2, FMA                               (in x86-64-v3)
 *   generic  everything else, every other architecture
 *
 * __builtin_cpu_supports reads cpuid and also checks that the OS saves the
 * wide registers (XGETBV), so a level it reports is one we may run.
 * SG_ISA=generic|avx2|avx512 in the environment lowers the level (to test
 * or compare the other paths on one machine); a level above the CPU's, or
 * an unknown name, is reported once on stderr and the CPU's best is used.
 * sg_set_isa() changes the level later. Only a level at or below
 * sg_isa_cpu() is ever published in sg_kern.
 */
#include "sg_internal.h"
#include "sg_kernels.h"

#include <stdio.h>
#ifdef SG_KERNELS_X86
#include <cpuid.h>
#endif

const sg_kernels *sg_kern = &sg_kernels_generic;

static const char *const isa_names[SG_ISA_COUNT] = {
    [SG_ISA_GENERIC] = "generic",
    [SG_ISA_AVX2] = "avx2",
    [SG_ISA_AVX512] = "avx512",
};

static const sg_kernels *const tables[SG_ISA_COUNT] = {
    [SG_ISA_GENERIC] = &sg_kernels_generic,
#ifdef SG_KERNELS_X86
    [SG_ISA_AVX2] = &sg_kernels_avx2,
    [SG_ISA_AVX512] = &sg_kernels_avx512,
#endif
};

static sg_isa cpu_isa = SG_ISA_GENERIC;
static char cpu_name[49]; /* cpuid's brand string, or the architecture */
static char env_note[96]; /* what became of SG_ISA, for sg_kernels_describe */

static sg_isa detect(void)
{
#ifdef SG_KERNELS_X86
    __builtin_cpu_init();
    bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
                  __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
                  __builtin_cpu_supports("avx512cd");
    if (avx512)
        return SG_ISA_AVX512;
    if (avx2)
        return SG_ISA_AVX2;
#endif
    return SG_ISA_GENERIC;
}

/* The processor's name as cpuid reports it (leaves 0x80000002-4), spaces
 * trimmed; elsewhere the architecture. */
static void read_cpu_name(void)
{
#ifdef SG_KERNELS_X86
    unsigned r[12] = {0};
    if ((unsigned)__get_cpuid_max(0x80000000u, NULL) >= 0x80000004u) {
        for (unsigned i = 0; i < 3; i++)
            __get_cpuid(0x80000002u + i, &r[4 * i], &r[4 * i + 1], &r[4 * i + 2], &r[4 * i + 3]);
        memcpy(cpu_name, r, 48);
        cpu_name[48] = 0;
    }
    const char *p = cpu_name;
    while (*p == ' ')
        p++;
    memmove(cpu_name, p, strlen(p) + 1);
    for (size_t n = strlen(cpu_name); n > 0 && cpu_name[n - 1] == ' '; n--)
        cpu_name[n - 1] = 0;
#endif
    if (!cpu_name[0]) {
#if defined(__x86_64__)
        strcpy(cpu_name, "x86-64");
#elif defined(__aarch64__)
        strcpy(cpu_name, "aarch64");
#else
        strcpy(cpu_name, "unknown CPU");
#endif
    }
}

sg_isa sg_isa_choose(const char *want, sg_isa cpu, bool *refused, char *note, size_t len)
{
    note[0] = 0;
    *refused = false;
    if (!want || !*want)
        return cpu;
    sg_isa w;
    if (sg_isa_from_name(want, &w) != 0) {
        snprintf(note, len, "SG_ISA=%.20s is not one of generic, avx2, avx512", want);
        *refused = true;
        return cpu;
    }
    if (w > cpu) {
        snprintf(note, len, "SG_ISA=%s: this CPU supports at most %s", isa_names[w], isa_names[cpu]);
        *refused = true;
        return cpu;
    }
    snprintf(note, len, "SG_ISA=%s", isa_names[w]);
    return w;
}

__attribute__((constructor)) static void isa_init(void)
{
    read_cpu_name();
    cpu_isa = detect();
    bool refused;
    sg_isa isa = sg_isa_choose(getenv("SG_ISA"), cpu_isa, &refused, env_note, sizeof env_note);
    if (refused)
        fprintf(stderr, "scratchgrad: %s; using %s\n", env_note, isa_names[isa]);
    sg_kern = tables[isa];
}

sg_isa sg_isa_cpu(void) { return cpu_isa; }

sg_isa sg_isa_active(void) { return sg_kern->isa; }

int sg_set_isa(sg_isa isa)
{
    if ((int)isa < 0 || isa >= SG_ISA_COUNT) {
        sg_set_error("sg_set_isa: %d is not an instruction-set level (0 .. %d)", (int)isa, SG_ISA_COUNT - 1);
        return -1;
    }
    if (isa > cpu_isa) {
        sg_set_error("sg_set_isa: %s is not supported by this CPU (best: %s)", isa_names[isa],
                     isa_names[cpu_isa]);
        return -1;
    }
    sg_kern = tables[isa];
    return 0;
}

const char *sg_isa_name(sg_isa isa)
{
    return (int)isa >= 0 && isa < SG_ISA_COUNT ? isa_names[isa] : "?";
}

/* a == b (b in lower case), ignoring the case of a's ASCII letters
 * (SG_ISA=AVX2, as the CPU's manuals write it); not tolower(), which
 * follows the program's locale. */
static bool same_name(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if ((*a >= 'A' && *a <= 'Z' ? *a - 'A' + 'a' : *a) != *b)
            return false;
    return *a == *b;
}

int sg_isa_from_name(const char *name, sg_isa *isa)
{
    for (int i = 0; name && i < SG_ISA_COUNT; i++)
        if (same_name(name, isa_names[i])) {
            *isa = (sg_isa)i;
            return 0;
        }
    return -1;
}

char *sg_kernels_describe(char *buf, size_t len)
{
    if (!buf || len == 0)
        return buf;
    char mm[160];
#ifdef SG_NATIVE_BUILD
    const char *native = "; -Dnative build: every level compiled for the build machine";
#else
    const char *native = "";
#endif
    snprintf(buf, len, "kernels: %s on %s (best: %s%s%s%s); matmul: %s", isa_names[sg_kern->isa], cpu_name,
             isa_names[cpu_isa], env_note[0] ? "; " : "", env_note, native, sg_sgemm_describe(mm, sizeof mm));
    return buf;
}
