// OpenBLAS through its CBLAS interface. openblas_set_num_threads is OpenBLAS-specific and
// lets the user's --threads bound BLAS as well as Balcony's own kernels.
#include <cblas.h>
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
