// Offsets of a "row" problem shared by reductions, softmax and layer norm: kept (outer) dims
// and row (inner) dims, each as shape/strides innermost first, up to 16 dims.

#define OUTER_STEP(k) if (ond > 0x##k) { const long c = o % osh.s##k; o /= osh.s##k;     \
    off += c * ost.s##k; }
#define INNER_STEP(k) if (ind > 0x##k) { const long c = r % ish.s##k; r /= ish.s##k;     \
    off += c * ist.s##k; }

inline long outer_offset(long o, const long16 osh, const long16 ost, const int ond) {
    long off = 0;
    FOR_ALL_DIMS(OUTER_STEP)
    return off;
}

inline long inner_offset(long r, const long16 ish, const long16 ist, const int ind) {
    if (ind == 1) return r * ist.s0;
    long off = 0;
    FOR_ALL_DIMS(INNER_STEP)
    return off;
}
