#pragma once
// What float64 eigen-solves resolve: the error model every row's cut, band
// and error bar draw on (measured by bench/twin_spread.py).
#include <cstddef>

namespace basinvol {

// What each value of a float64 eigen-solve of an n×n matrix is within:
// LAPACK's p(n)·ε·‖H‖₂, taken as max(2·√n, 8)·ε(float64)·‖H‖_F (dsyevd
// against mpmath at 40 digits, bench/twin_spread.py --exact: up to
// 5.4·ε·‖H‖_F at n = 5, over 2·√5).
double solve_resolution(std::size_t n, double frobenius);

// How far apart two float64 solves of one n×n Hessian, its parameters
// relabelled, put one eigenvalue, measured (bench/twin_spread.py: dsyevd
// through numpy, n = 2..1000, 18,400 relabelled pairs of five spectrum
// families; --two-stage, one twin in two stages, n = 900..2000: at most 6.6
// by dsyevd_2stage, 7.6 by basinvol's, 9.8 seen on a Kronecker-like matrix
// at n = 1000) 5–10·ε·‖H‖_F whatever n for the largest values, and at most
// 2.1·ε·‖H‖_F for values near the floor: min(4·√n, 16)·ε·‖H‖_F, an
// estimate (the bound, twice solve_resolution(), would reach past half the
// floor at small n and make every flat value there possibly curved). A
// rank-one extreme, the all-ones matrix, goes past it in two stages: its
// zeros up to 46·ε·‖H‖_F from 0 at n = 1000, within LAPACK's bound and far
// under the floor 8·√n·ε·‖H‖_F (docs/method.md).
double twin_reach(std::size_t n, double frobenius);

// The rounding allowance every partial solver's bounds carry, 4·√n·ε·‖H‖_F:
// the rounding of the products, orthogonalization and small eigenproblem
// that formed them, and the dense reference's own error (an estimate,
// far above what is seen, and half the floor's solver term 8·√n·ε·‖H‖_F).
double rounding_allowance(std::size_t n, double frobenius);

}  // namespace basinvol
