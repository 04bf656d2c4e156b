#pragma once
// The few BLAS and LAPACK routines basinvol calls directly (Fortran symbols
// of the system's BLAS/LAPACK, Debian OpenBLAS by default), with thin
// column-major wrappers that take their scalar arguments by value.
#include <cstddef>

extern "C" {
void dgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k, const double* alpha,
            const double* a, const int* lda, const double* b, const int* ldb, const double* beta, double* c,
            const int* ldc, std::size_t, std::size_t);
void dsyrk_(const char* uplo, const char* trans, const int* n, const int* k, const double* alpha, const double* a,
            const int* lda, const double* beta, double* c, const int* ldc, std::size_t, std::size_t);
void dsymm_(const char* side, const char* uplo, const int* m, const int* n, const double* alpha, const double* a,
            const int* lda, const double* b, const int* ldb, const double* beta, double* c, const int* ldc,
            std::size_t, std::size_t);
void dtrmm_(const char* side, const char* uplo, const char* transa, const char* diag, const int* m, const int* n,
            const double* alpha, const double* a, const int* lda, double* b, const int* ldb, std::size_t,
            std::size_t, std::size_t, std::size_t);
void dtrsm_(const char* side, const char* uplo, const char* transa, const char* diag, const int* m, const int* n,
            const double* alpha, const double* a, const int* lda, double* b, const int* ldb, std::size_t,
            std::size_t, std::size_t, std::size_t);
void dgemv_(const char* trans, const int* m, const int* n, const double* alpha, const double* a, const int* lda,
            const double* x, const int* incx, const double* beta, double* y, const int* incy, std::size_t);
void dgeqrf_(const int* m, const int* n, double* a, const int* lda, double* tau, double* work, const int* lwork,
             int* info);
void dorgqr_(const int* m, const int* n, const int* k, double* a, const int* lda, const double* tau, double* work,
             const int* lwork, int* info);
void dpotrf_(const char* uplo, const int* n, double* a, const int* lda, int* info, std::size_t);
void dlauum_(const char* uplo, const int* n, double* a, const int* lda, int* info, std::size_t);
void dpstrf_(const char* uplo, const int* n, double* a, const int* lda, int* piv, int* rank, const double* tol,
             double* work, int* info, std::size_t);
void sgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k, const float* alpha,
            const float* a, const int* lda, const float* b, const int* ldb, const float* beta, float* c,
            const int* ldc, std::size_t, std::size_t);
void ssymm_(const char* side, const char* uplo, const int* m, const int* n, const float* alpha, const float* a,
            const int* lda, const float* b, const int* ldb, const float* beta, float* c, const int* ldc,
            std::size_t, std::size_t);
void dsyevd_(const char* jobz, const char* uplo, const int* n, double* a, const int* lda, double* w, double* work,
             const int* lwork, int* iwork, const int* liwork, int* info, std::size_t, std::size_t);
// The two stages of dsyevd_2stage's reduction, and what it does around them.
int ilaenv2stage_(const int* ispec, const char* name, const char* opts, const int* n1, const int* n2, const int* n3,
                  const int* n4, std::size_t, std::size_t);
void dsytrd_sy2sb_(const char* uplo, const int* n, const int* kd, double* a, const int* lda, double* ab,
                   const int* ldab, double* tau, double* work, const int* lwork, int* info, std::size_t);
void dsytrd_sb2st_(const char* stage1, const char* vect, const char* uplo, const int* n, const int* kd, double* ab,
                   const int* ldab, double* d, double* e, double* hous, const int* lhous, double* work,
                   const int* lwork, int* info, std::size_t, std::size_t, std::size_t);
void dsterf_(const int* n, double* d, double* e, int* info);
double dlansy_(const char* norm, const char* uplo, const int* n, const double* a, const int* lda, double* work,
               std::size_t, std::size_t);
double dlamch_(const char* cmach, std::size_t);
void dlascl_(const char* type, const int* kl, const int* ku, const double* cfrom, const double* cto, const int* m,
             const int* n, double* a, const int* lda, int* info, std::size_t);
// OpenBLAS (linked through LAPACK): its thread count is process-global.
void openblas_set_num_threads(int);
int openblas_get_num_threads(void);
char* openblas_get_corename(void);
}

namespace basinvol::blas {

// OpenBLAS's thread count set for a scope, and the count before restored on
// every way out of it.
class ThreadCount {
public:
    explicit ThreadCount(int threads) : saved_(openblas_get_num_threads()) { openblas_set_num_threads(threads); }
    ~ThreadCount() { openblas_set_num_threads(saved_); }
    ThreadCount(const ThreadCount&) = delete;
    ThreadCount& operator=(const ThreadCount&) = delete;

private:
    int saved_;
};

// C = alpha·op(A)·op(B) + beta·C.
inline void gemm(char ta, char tb, int m, int n, int k, double alpha, const double* a, int lda, const double* b,
                 int ldb, double beta, double* c, int ldc) {
    dgemm_(&ta, &tb, &m, &n, &k, &alpha, a, &lda, b, &ldb, &beta, c, &ldc, 1, 1);
}

// y = alpha·op(A)·x + beta·y, x and y with strides incx and incy.
inline void gemv(char ta, int m, int n, double alpha, const double* a, int lda, const double* x, int incx, double beta,
                 double* y, int incy) {
    dgemv_(&ta, &m, &n, &alpha, a, &lda, x, &incx, &beta, y, &incy, 1);
}

// The same in single precision (single.hpp says where that is enough).
inline void gemm(char ta, char tb, int m, int n, int k, float alpha, const float* a, int lda, const float* b, int ldb,
                 float beta, float* c, int ldc) {
    sgemm_(&ta, &tb, &m, &n, &k, &alpha, a, &lda, b, &ldb, &beta, c, &ldc, 1, 1);
}

// C = alpha·A·Aᵀ + beta·C (trans 'N', A n×k) or alpha·AᵀA + beta·C (trans 'T',
// A k×n); only the `uplo` triangle of C is written.
inline void syrk(char uplo, char trans, int n, int k, double alpha, const double* a, int lda, double beta, double* c,
                 int ldc) {
    dsyrk_(&uplo, &trans, &n, &k, &alpha, a, &lda, &beta, c, &ldc, 1, 1);
}

// C = alpha·A·B + beta·C with A symmetric (side 'L'), read from its `uplo` triangle.
inline void symm(char side, char uplo, int m, int n, double alpha, const double* a, int lda, const double* b, int ldb,
                 double beta, double* c, int ldc) {
    dsymm_(&side, &uplo, &m, &n, &alpha, a, &lda, b, &ldb, &beta, c, &ldc, 1, 1);
}

inline void symm(char side, char uplo, int m, int n, float alpha, const float* a, int lda, const float* b, int ldb,
                 float beta, float* c, int ldc) {
    ssymm_(&side, &uplo, &m, &n, &alpha, a, &lda, b, &ldb, &beta, c, &ldc, 1, 1);
}

// B = alpha·op(A)·B (side 'L') or alpha·B·op(A) (side 'R'), A triangular.
inline void trmm(char side, char uplo, char ta, char diag, int m, int n, double alpha, const double* a, int lda,
                 double* b, int ldb) {
    dtrmm_(&side, &uplo, &ta, &diag, &m, &n, &alpha, a, &lda, b, &ldb, 1, 1, 1, 1);
}

// B = alpha·op(A)⁻¹·B (side 'L') or alpha·B·op(A)⁻¹ (side 'R'), A triangular.
inline void trsm(char side, char uplo, char ta, char diag, int m, int n, double alpha, const double* a, int lda,
                 double* b, int ldb) {
    dtrsm_(&side, &uplo, &ta, &diag, &m, &n, &alpha, a, &lda, b, &ldb, 1, 1, 1, 1);
}

}  // namespace basinvol::blas
