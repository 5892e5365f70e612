// Unrolled walks over the components of long16 shape/stride vectors (dims innermost first).
// PoCL compiles private arrays indexed in loops several times slower than swizzles.
#define FOR_DIMS(S) S(2) S(3) S(4) S(5) S(6) S(7) S(8) S(9) S(a) S(b) S(c) S(d) S(e) S(f)
#define FOR_ALL_DIMS(S) S(0) S(1) FOR_DIMS(S)
