// OpenBLAS's CBLAS interface (Debian: libopenblas-dev). The thread count is set through
// openblas_set_num_threads so that BLAS and our own thread pool do not oversubscribe the cores.
#include <cblas.h>
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
char *openblas_get_corename(void);
