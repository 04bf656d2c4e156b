#!/usr/bin/env bash
# Writes the toy suite in testdata/toys/ with basinvol-toy. Every file here was
# made by exactly these commands:
#   bash testdata/toys/make_toys.sh build/basinvol-toy
set -euo pipefail
TOY=$(realpath "${1:-build/basinvol-toy}")
cd "$(dirname "$0")"
rm -f suite.h5 regularized.h5 bad.wrong_expected.h5

# suite.h5: every check `basinvol validate` makes must pass on it.
"$TOY" suite.h5 -d /classic/parabola --preset parabola                      # x^2 + y^2 in R^3: log V = log(pi T)
"$TOY" suite.h5 --append -d /classic/parabola_rotated_T05 --preset parabola --rotate 1 -T 0.5
"$TOY" suite.h5 --append -d /classic/parabola_float32 --preset parabola --rotate 2 --dtype float32
"$TOY" suite.h5 --append -d /classic/bowl --preset bowl --rotate 3
"$TOY" suite.h5 --append -d /classic/saddle --preset saddle --rotate 4
"$TOY" suite.h5 --append -d /classic/list --eigenvalues 5,3,1,0.25,0,0,0 --rotate 5 -T 2
"$TOY" suite.h5 --append -d /nonquadratic/quartic_valley --preset quartic-valley --rotate 6   # x^2 + y^4
"$TOY" suite.h5 --append -d /nonquadratic/quartic_bowl --preset quartic-bowl                  # x^4 + y^4
"$TOY" suite.h5 --append -d /nonquadratic/mixed --preset mixed --rotate 7                     # x^2 + y^2 + z^4 + w^6
"$TOY" suite.h5 --append -d /nonquadratic/anharmonic --loss '2*x^2 + 10*x^4 + y^2' --n 3 --rotate 8
"$TOY" suite.h5 --append -d /recipes/loguniform --flat 8 --curved 6 --lo 1e-2 --hi 1e2 --rotate 9
"$TOY" suite.h5 --append -d /recipes/clustered --count 3 --flat 3 --curved 5 --negative 1 \
    --spectrum clustered --lo 0.1 --hi 10 --rotate 10 --dtype float32
"$TOY" suite.h5 --append -d /recipes/wide --flat 20 --curved 200 --lo 1e-4 --hi 1e2 --rotate 11

# regularized.h5: two basins in R^4 that det(H + lambda I) orders the other way.
#   valley: curvature 1e4 in two directions, exactly flat in the other two (dim 2)
#   bowl:   curvature 1e-2 in all four directions (dim 0, bounded)
"$TOY" regularized.h5 -d /valley --eigenvalues 1e4,1e4,0,0 --name valley
"$TOY" regularized.h5 --append -d /bowl --eigenvalues 0.01,0.01,0.01,0.01 --name bowl

# bad.wrong_expected.h5: deliberately wrong answers; validate must exit 1.
"$TOY" bad.wrong_expected.h5 -d /rank --preset parabola --set expected_rank=3
"$TOY" bad.wrong_expected.h5 --append -d /log_volume --preset parabola --rotate 1 --set expected_log_volume=1.2
"$TOY" bad.wrong_expected.h5 --append -d /learning_coefficient --preset quartic-valley --set expected_learning_coefficient=0.5
