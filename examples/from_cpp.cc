// from_cpp.cc -- heed from C++: its headers declare the C functions
// extern "C", so a C++ program includes heed.h and links libheed as is.
// `make installcheck` builds and runs it (with c++, where there is one).
#include <heed/heed.h>

#include <cstdio>

int main() {
    heed_tensor t = {};
    if (heed_tensor_alloc(&t, 1, 2, 3, 4) != HEED_OK) {
        std::fprintf(stderr, "%s\n", heed_last_error());
        return 1;
    }
    heed_tensor_fill(&t, 0.5f);
    std::printf("heed from C++: a (%d, %d, %d, %d) tensor of %zu floats\n", t.n, t.c, t.h, t.w,
                heed_tensor_count(&t));
    heed_tensor_free(&t);
    return 0;
}
