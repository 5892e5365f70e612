// Conversions from T to every dtype the device supports: the Python side lists them as
// CASTS(X) entries X(name, OpenCL type, kind) and asks elementwise.cl for the to_<name>
// kernels. Float -> int truncates toward zero (C conversion); anything -> bool is x != 0.
#define DEF_CAST(NAME, DT, DK) \
    inline DT op_to_##NAME(T a) { return (DK == 0) ? (DT)(a != (T)0) : (DT)a; }
CASTS(DEF_CAST)
