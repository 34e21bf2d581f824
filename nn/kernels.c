/* kernels.c — picks nn's kernel table for a SIMD level: the tables nn_kernels_<level> are
 * defined in nn/isa/kernels_isa.c, compiled once per level of this architecture.
 * Not the kernels themselves, and not the choice of level (nn/isa.c). */
#include "nn/kernels.h"

#define X(e, s) extern const struct nn_kernels MX_ISA_CAT(nn_kernels, s);
MX_ISA_FOREACH(X)
#undef X

const struct nn_kernels *nn_kernels_at(enum mx_isa isa)
{
    if (!mx_isa_supported(isa))
        return NULL;
    switch (isa) {
#define X(e, s)                                                                                              \
    case e:                                                                                                  \
        return &MX_ISA_CAT(nn_kernels, s);
        MX_ISA_FOREACH(X)
#undef X
    default:
        return NULL;
    }
}

const struct nn_kernels *nn_kernels(void)
{
    static const struct nn_kernels *k; /* set once; every thread computes the same pointer */
    const struct nn_kernels *p = __atomic_load_n(&k, __ATOMIC_ACQUIRE);
    if (!p) {
        p = nn_kernels_at(mx_isa());
        __atomic_store_n(&k, p, __ATOMIC_RELEASE);
    }
    return p;
}
