// Dimension-first ranking, ties, mixed n, saddles last, compare.
#include <basinvol/rank/ranking.hpp>

#include <doctest/doctest.h>

using namespace basinvol;

namespace {
Row row(const char* name, std::size_t n, std::size_t dim, double logv, std::size_t neg = 0) {
    Row r;
    r.source = name;
    r.ok = true;
    r.n = n;
    r.dim = dim;
    r.rank = n - dim;
    r.log_volume = logv;
    r.negative = neg;
    return r;
}
}  // namespace

TEST_CASE("dimension first, then log-volume; error rows last with no place") {
    Row err;
    err.source = "bad";
    std::vector<Row> rows = {row("a", 10, 2, 50.0), err, row("b", 10, 3, -100.0), row("c", 10, 2, 60.0)};
    rank_rows(rows, {});
    REQUIRE(rows.size() == 4);
    CHECK(rows[0].source == "b");  // more flat directions wins, whatever its volume
    CHECK(rows[1].source == "c");
    CHECK(rows[2].source == "a");
    CHECK(rows[3].source == "bad");
    CHECK(*rows[0].place == 1);
    CHECK(*rows[1].place == 2);
    CHECK(*rows[2].place == 3);
    CHECK_FALSE(rows[3].place.has_value());
}

TEST_CASE("log-volumes within --tie-tol share a place") {
    std::vector<Row> rows = {row("a", 5, 1, 1.0), row("b", 5, 1, 1.0 + 1e-9), row("c", 5, 1, 0.5)};
    RankOptions opt;
    opt.tie_tol = 1e-6;
    rank_rows(rows, opt);
    CHECK(*rows[0].place == 1);
    CHECK(*rows[1].place == 1);
    CHECK(*rows[2].place == 3);
}

TEST_CASE("rows of different n are ranked by dimension only") {
    std::vector<Row> rows = {row("small", 3, 1, 100.0), row("large", 5, 1, -100.0), row("flat", 5, 3, -200.0)};
    Ranking r = rank_rows(rows, {});
    CHECK(r.mixed_n);
    CHECK(rows[0].source == "flat");
    CHECK(*rows[0].place == 1);
    CHECK(*rows[1].place == 2);
    CHECK(*rows[2].place == 2);  // same dimension, different n: not compared by volume
    CHECK(std::find(rows[1].warnings.begin(), rows[1].warnings.end(), "mixed_n") != rows[1].warnings.end());
}

TEST_CASE("--negatives last ranks saddles after every minimum") {
    std::vector<Row> rows = {row("saddle", 10, 5, 10.0, 2), row("min", 10, 1, 0.0)};
    RankOptions opt;
    opt.saddles_last = true;
    rank_rows(rows, opt);
    CHECK(rows[0].source == "min");
    std::vector<Row> plain = {row("saddle", 10, 5, 10.0, 2), row("min", 10, 1, 0.0)};
    rank_rows(plain, {});
    CHECK(plain[0].source == "saddle");
}

TEST_CASE("compare says what decided") {
    std::string why;
    CHECK(compare_rows(row("a", 4, 2, 0.0), row("b", 4, 1, 9.0), {}, why) == 1);
    CHECK(why.find("dimension") == 0);
    CHECK(compare_rows(row("a", 4, 1, 0.0), row("b", 4, 1, 9.0), {}, why) == -1);
    CHECK(why.find("volume") == 0);
    CHECK(compare_rows(row("a", 4, 1, 1.0), row("b", 4, 1, 1.0), {}, why) == 0);
    CHECK(why.find("tie") == 0);
    CHECK(compare_rows(row("a", 4, 1, 1.0), row("b", 5, 1, 0.0), {}, why) == 0);
}

TEST_CASE("regularized places follow the regularized volume") {
    std::vector<Row> rows = {row("a", 4, 2, 0.0), row("b", 4, 1, 9.0)};
    rows[0].log_volume_regularized = -3.0;
    rows[1].log_volume_regularized = 2.0;
    rank_regularized(rows, 1e-6);
    CHECK(*rows[0].place_regularized == 2);
    CHECK(*rows[1].place_regularized == 1);
}
