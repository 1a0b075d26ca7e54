// Tests of tools/workload/workload: dist.cc's table rules, the real W1..W5 and
// starve tables (against data/workloads/check.py's published output), sampling
// and error reporting.
#include "workload/workload.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace uhoma::workload {
namespace {

using Raw = std::pair<std::uint32_t, double>;

Distribution load_ok(std::string_view name, std::uint32_t max_length = 1000000) {
    auto dist = Distribution::load(name, default_data_dir(), max_length);
    if (!dist) {
        ADD_FAILURE() << dist.error();
        return Distribution::load("1", "").value();
    }
    return std::move(dist).value();
}

Distribution from_ok(const std::vector<Raw>& raw, std::uint32_t max_length, double min_bucket_frac,
                     double max_size_ratio) {
    auto dist = Distribution::from_points(raw, max_length, min_bucket_frac, max_size_ratio);
    if (!dist) {
        ADD_FAILURE() << dist.error();
        return Distribution::load("1", "").value();
    }
    return std::move(dist).value();
}

// One row of check.py's "As sampled by the benchmark client" table.
struct Summary {
    std::size_t points;  // distinct lengths, not counting the (0, 0.0) point
    std::uint32_t min;
    std::uint32_t max;
    double mean;  // printed to 0.1 byte
    std::uint32_t median;
};

void expect_summary(std::string_view name, const Summary& want) {
    SCOPED_TRACE(std::string(name));
    const Distribution dist = load_ok(name);
    const auto& table = dist.table();
    ASSERT_GE(table.size(), 2U);
    EXPECT_EQ(table.front(), (Point{0, 0.0}));
    EXPECT_EQ(table.back().cumulative_fraction, 1.0);
    std::set<std::uint32_t> distinct;
    std::uint32_t median = 0;
    for (std::size_t i = 1; i < table.size(); ++i) {
        EXPECT_GT(table[i].length, table[i - 1].length) << "at " << i;
        EXPECT_GE(table[i].cumulative_fraction, table[i - 1].cumulative_fraction) << "at " << i;
        distinct.insert(table[i].length);
        if (median == 0 && table[i].cumulative_fraction >= 0.5) median = table[i].length;
    }
    EXPECT_EQ(distinct.size(), want.points);
    EXPECT_EQ(table.size() - 1, want.points);
    EXPECT_EQ(table[1].length, want.min);
    EXPECT_EQ(table.back().length, want.max);
    EXPECT_NEAR(dist.mean(), want.mean, 0.05);
    EXPECT_EQ(median, want.median);
    EXPECT_EQ(dist.max_length(), 1000000U);
}

// The first u-draw-to-length rule from dist.cc, written as its linear scan.
std::uint32_t linear_scan(const std::vector<Point>& table, double u) {
    for (const Point& point : table) {
        if (point.cumulative_fraction >= u) return point.length;
    }
    return table.back().length;
}

// A scratch directory of hand-written workload files, removed afterwards.
class ScratchDir {
public:
    explicit ScratchDir(const std::string& name)
        : path_(std::filesystem::path(::testing::TempDir()) / ("uhoma_workload_" + name)) {
        std::filesystem::remove_all(path_);
        std::filesystem::create_directories(path_);
    }
    ~ScratchDir() {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }
    ScratchDir(const ScratchDir&) = delete;
    ScratchDir& operator=(const ScratchDir&) = delete;

    std::string path() const { return path_.string(); }
    void write(const std::string& file, const std::string& text) const {
        std::ofstream out(path_ / file, std::ios::binary | std::ios::trunc);
        out << text;
    }

private:
    std::filesystem::path path_;
};

// --- The real workloads, against check.py's published output --------------

TEST(load, w1_matches_checker) {
    expect_summary("w1", {156, 8, 83912, 192.8, 27});
}
TEST(load, w2_matches_checker) {
    expect_summary("w2", {95, 8, 1000000, 440.8, 269});
}
TEST(load, w3_matches_checker) {
    expect_summary("w3", {113, 8, 1000000, 2567.7, 268});
}
TEST(load, w4_matches_checker) {
    expect_summary("w4", {225, 53, 1000000, 61008.1, 662});
}
TEST(load, w5_matches_checker) {
    expect_summary("w5", {109, 1430, 1000000, 386161.4, 72030});
}
TEST(load, starve_matches_checker) {
    expect_summary("starve", {10, 100000, 1000000, 526315.8, 500000});
    // 100 x (100 KB .. 900 KB) + 50 x 1 MB, over 950 messages: nothing merges.
    EXPECT_NEAR(load_ok("starve").mean(), 5e8 / 950.0, 1e-6);
}

TEST(load, names_are_case_insensitive) {
    EXPECT_EQ(load_ok("W4").table(), load_ok("w4").table());
    EXPECT_EQ(load_ok("Starve").table(), load_ok("starve").table());
}

TEST(load, w1_end_of_list_gives_tail_to_83912) {
    // W1's last raw points (86401 .. 100000) never add min_bucket_frac, and
    // the cumulative sum stays just below 1.0, so the end-of-list step puts
    // their mass on the last kept point, 83912, instead of 100000.
    const Distribution dist = load_ok("w1");
    EXPECT_EQ(dist.table().back(), (Point{83912, 1.0}));
    EXPECT_LT(dist.table()[dist.table().size() - 2].cumulative_fraction, 1.0);
    // No limit changes nothing: W1 never reaches 1,000,000.
    EXPECT_EQ(load_ok("w1", 0).table(), dist.table());
}

TEST(load, w4_truncation_puts_tail_at_max_length) {
    const Distribution dist = load_ok("w4");
    const auto& table = dist.table();
    EXPECT_EQ(table.back(), (Point{1000000, 1.0}));
    // README: 2.79% of W4 messages sit on the 1,000,000-byte point.
    EXPECT_NEAR(1.0 - table[table.size() - 2].cumulative_fraction, 0.0279, 0.0001);
    // Without a limit the raw maximum (10,000,000) survives and the mean rises.
    const Distribution untruncated = load_ok("w4", 0);
    EXPECT_EQ(untruncated.table().back().length, 10000000U);
    EXPECT_EQ(untruncated.max_length(), 0U);
    EXPECT_GT(untruncated.mean(), 2 * dist.mean());
}

TEST(load, fixed_size_is_one_point) {
    const Distribution dist = load_ok("100");
    EXPECT_EQ(dist.table(), (std::vector<Point>{{100, 1.0}}));
    EXPECT_EQ(dist.mean(), 100.0);
    std::mt19937 rng(7);
    for (int i = 0; i < 1000; ++i) ASSERT_EQ(dist.sample(rng), 100U);
}

TEST(load, fixed_size_is_not_truncated_and_reads_no_file) {
    auto dist = Distribution::load("500000", "/nonexistent/uhoma", 1000);
    ASSERT_TRUE(dist) << dist.error();
    EXPECT_EQ(dist->table(), (std::vector<Point>{{500000, 1.0}}));
    EXPECT_EQ(dist->mean(), 500000.0);
}

TEST(load, accepts_crlf_blank_lines_and_spaces) {
    const ScratchDir dir("crlf");
    dir.write("W2.csv", "length,weight\r\n8,1\r\n\r\n 16 , 3 \r\n\n");
    auto dist = Distribution::load("w2", dir.path(), 1000000, 0.0, 1.2);
    ASSERT_TRUE(dist) << dist.error();
    EXPECT_EQ(dist->table(), (std::vector<Point>{{0, 0.0}, {8, 0.25}, {16, 1.0}}));
}

// --- The table rules on small synthetic inputs ------------------------------

TEST(from_points, rule_a_merges_until_min_bucket_frac) {
    // Weights in eighths, so every fraction is exact. max_size_ratio 100
    // keeps rule (b) out of it, except that the first raw point is always
    // kept: ratio x 0 (the (0, 0.0) point) is below any next length.
    const Distribution dist =
        from_ok({{10, 1}, {11, 1}, {12, 1}, {13, 1}, {14, 2}, {15, 2}}, 0, 0.25, 100.0);
    // 11 (+0.125) merges into 12 (+0.25 >= 0.25, kept); 13 merges into 14;
    // 15 reaches 1.0 and is always kept.
    const std::vector<Point> want = {{0, 0.0}, {10, 0.125}, {12, 0.375}, {14, 0.75}, {15, 1.0}};
    EXPECT_EQ(dist.table(), want);
    // Merged mass moves to the larger length: 13.25 against the raw 13.0.
    EXPECT_DOUBLE_EQ(dist.mean(), 13.25);
}

TEST(from_points, rule_b_keeps_points_before_a_size_jump) {
    // min_bucket_frac 0.9 turns rule (a) off. A point is kept when the next
    // raw length is strictly more than 2 x the last kept length.
    const Distribution dist =
        from_ok({{100, 1}, {150, 1}, {200, 1}, {401, 1}, {402, 2}, {1000, 2}}, 0, 0.9, 2.0);
    // 100 is kept (2 x 0 < 150). 150 merges into 200: the next length, 200,
    // is not strictly more than 2 x 100. 200 is kept (401 > 2 x 100), so are
    // 401 (402 > 2 x 200) and 402 (1000 > 2 x 401); 1000 reaches 1.0.
    const std::vector<Point> want = {{0, 0.0},   {100, 0.125}, {200, 0.375},
                                     {401, 0.5}, {402, 0.75},  {1000, 1.0}};
    EXPECT_EQ(dist.table(), want);
}

TEST(from_points, no_merging_with_zero_thresholds) {
    const Distribution dist = from_ok({{1, 1}, {2, 1}, {3, 1}, {4, 1}}, 0, 0.0, 0.0);
    const std::vector<Point> want = {{0, 0.0}, {1, 0.25}, {2, 0.5}, {3, 0.75}, {4, 1.0}};
    EXPECT_EQ(dist.table(), want);
    EXPECT_DOUBLE_EQ(dist.mean(), 2.5);
}

TEST(from_points, truncation_puts_remaining_mass_at_max_length) {
    const std::vector<Raw> raw = {{10, 1}, {100, 1}, {1000, 1}, {5000, 1}};
    const Distribution cut = from_ok(raw, 500, 0.0, 1.2);
    EXPECT_EQ(cut.table(), (std::vector<Point>{{0, 0.0}, {10, 0.25}, {100, 0.5}, {500, 1.0}}));
    EXPECT_DOUBLE_EQ(cut.mean(), 10 * 0.25 + 100 * 0.25 + 500 * 0.5);
    EXPECT_EQ(cut.max_length(), 500U);
    // A raw length equal to max_length is truncated too (same point).
    const Distribution at = from_ok(raw, 1000, 0.0, 1.2);
    EXPECT_EQ(at.table(), (std::vector<Point>{{0, 0.0}, {10, 0.25}, {100, 0.5}, {1000, 1.0}}));
    // max_length 0 means no limit.
    const Distribution none = from_ok(raw, 0, 0.0, 1.2);
    EXPECT_EQ(none.table().back(), (Point{5000, 1.0}));
    EXPECT_DOUBLE_EQ(none.mean(), (10 + 100 + 1000 + 5000) / 4.0);
}

TEST(from_points, truncation_below_first_length_is_one_point) {
    const Distribution dist = from_ok({{10, 1}, {100, 1}}, 5, 0.0025, 1.2);
    EXPECT_EQ(dist.table(), (std::vector<Point>{{0, 0.0}, {5, 1.0}}));
    EXPECT_DOUBLE_EQ(dist.mean(), 5.0);
}

TEST(from_points, end_of_list_gives_skipped_tail_to_last_kept_point) {
    // 0.1 + 0.1 + 0.1 + 0.01 normalizes to a running sum that ends just below
    // 1.0 (0.9999999999999999). 40 adds 3% < min_bucket_frac and rule (b)
    // never fires for the last point, so it is skipped; the end-of-list step
    // then sets 30's fraction to 1.0 and 40 disappears.
    const std::vector<Raw> raw = {{10, 0.1}, {20, 0.1}, {30, 0.1}, {40, 0.01}};
    const Distribution dist = from_ok(raw, 0, 0.05, 100.0);
    const double total = 0.1 + 0.1 + 0.1 + 0.01;
    const double first = 0.1 / total;
    const std::vector<Point> want = {{0, 0.0}, {10, first}, {20, first + 0.1 / total}, {30, 1.0}};
    EXPECT_EQ(dist.table(), want);
}

TEST(from_points, single_point_is_the_whole_distribution) {
    const Distribution dist = from_ok({{777, 3.5}}, 1000000, 0.0025, 1.2);
    EXPECT_EQ(dist.table(), (std::vector<Point>{{0, 0.0}, {777, 1.0}}));
    EXPECT_DOUBLE_EQ(dist.mean(), 777.0);
}

// --- Sampling ---------------------------------------------------------------

TEST(sample, w4_empirical_mean_matches_and_only_table_lengths_appear) {
    const Distribution dist = load_ok("w4");
    std::set<std::uint32_t> lengths;
    for (const Point& point : dist.table()) lengths.insert(point.length);
    std::mt19937 rng(20260715);
    double sum = 0.0;
    constexpr int kSamples = 1000000;
    for (int i = 0; i < kSamples; ++i) {
        const std::uint32_t length = dist.sample(rng);
        ASSERT_TRUE(lengths.count(length) == 1) << length;
        sum += length;
    }
    EXPECT_NEAR(sum / kSamples, dist.mean(), 0.01 * dist.mean());
}

TEST(sample, frequencies_follow_fraction_steps) {
    const Distribution dist = from_ok({{10, 1}, {100, 1}, {1000, 2}}, 0, 0.0, 1.2);
    std::mt19937 rng(42);
    std::map<std::uint32_t, int> counts;
    constexpr int kSamples = 200000;
    for (int i = 0; i < kSamples; ++i) ++counts[dist.sample(rng)];
    EXPECT_EQ(counts.size(), 3U);  // never 0: u is exactly 0.0 about 2^-53 of the time
    EXPECT_NEAR(counts[10] / double{kSamples}, 0.25, 0.01);
    EXPECT_NEAR(counts[100] / double{kSamples}, 0.25, 0.01);
    EXPECT_NEAR(counts[1000] / double{kSamples}, 0.5, 0.01);
}

TEST(sample, matches_dist_cc_linear_scan_draw_for_draw) {
    // Same engine and seed: one uniform_real_distribution<double>(0, 1) draw
    // per sample, mapped by the first fraction >= u.
    for (const char* name : {"w1", "w2", "w3", "w5", "starve"}) {
        SCOPED_TRACE(name);
        const Distribution dist = load_ok(name);
        std::mt19937 rng(99);
        std::mt19937 reference(99);
        for (int i = 0; i < 100000; ++i) {
            const double u = std::uniform_real_distribution<double>(0.0, 1.0)(reference);
            ASSERT_EQ(dist.sample(rng), linear_scan(dist.table(), u)) << "sample " << i;
        }
        EXPECT_TRUE(rng == reference);
    }
}

TEST(sample, fixed_size_consumes_one_draw) {
    const Distribution dist = load_ok("64");
    std::mt19937 rng(5);
    std::mt19937 reference(5);
    EXPECT_EQ(dist.sample(rng), 64U);
    (void)std::uniform_real_distribution<double>(0.0, 1.0)(reference);
    EXPECT_TRUE(rng == reference);
}

// --- Errors -----------------------------------------------------------------

void expect_one_line_error(const std::string& error, const std::string& part) {
    EXPECT_NE(error.find(part), std::string::npos) << error;
    EXPECT_EQ(error.find('\n'), std::string::npos) << error;
    EXPECT_EQ(error.find('\r'), std::string::npos) << error;
}

TEST(load, unknown_name_is_an_error) {
    for (const char* name :
         {"w6", "w", "", "0", "-5", "+5", " 100", "100x", "4294967296", "starve2", "w1\n"}) {
        SCOPED_TRACE(name);
        auto dist = Distribution::load(name, default_data_dir());
        ASSERT_FALSE(dist);
        expect_one_line_error(dist.error(), "unknown workload");
    }
}

TEST(load, missing_file_is_an_error) {
    auto dist = Distribution::load("w3", "/nonexistent/uhoma");
    ASSERT_FALSE(dist);
    expect_one_line_error(dist.error(), "cannot open workload file '/nonexistent/uhoma/W3.csv'");
}

TEST(load, directory_instead_of_file_is_an_error) {
    const ScratchDir dir("isdir");
    std::filesystem::create_directory(std::filesystem::path(dir.path()) / "W5.csv");
    auto dist = Distribution::load("w5", dir.path());
    ASSERT_FALSE(dist);
    expect_one_line_error(dist.error(), "W5.csv");
}

TEST(load, malformed_line_is_an_error_naming_the_line) {
    const ScratchDir dir("malformed");
    const std::vector<std::string> bad_lines = {
        "16,abc", "16",     "16,0.1,3", "-16,0.1", "0,0.1",   "16,0",
        "16,-1",  "16,nan", "16,inf",   "8,0.1",   "4,0.1",   "1.5,0.1",
        ",0.1",   "16,",    "16;0.1",   "x16,0.1", "16,0.1x", "99999999999,0.1"};
    for (const std::string& line : bad_lines) {
        SCOPED_TRACE(line);
        dir.write("W1.csv", "length,weight\n8,0.5\n" + line + "\n32,0.25\n");
        auto dist = Distribution::load("w1", dir.path());
        ASSERT_FALSE(dist);
        expect_one_line_error(dist.error(), "W1.csv' line 3");
    }
}

TEST(load, bad_header_or_no_rows_is_an_error) {
    const ScratchDir dir("header");
    dir.write("W1.csv", "8,0.5\n16,0.5\n");
    auto no_header = Distribution::load("w1", dir.path());
    ASSERT_FALSE(no_header);
    expect_one_line_error(no_header.error(), "line 1: expected header 'length,weight'");

    dir.write("W1.csv", "length,weight\n\n");
    auto no_rows = Distribution::load("w1", dir.path());
    ASSERT_FALSE(no_rows);
    expect_one_line_error(no_rows.error(), "has no data rows");

    dir.write("W1.csv", "");
    auto empty = Distribution::load("w1", dir.path());
    ASSERT_FALSE(empty);
    expect_one_line_error(empty.error(), "is empty");
}

TEST(from_points, invalid_input_is_an_error) {
    const auto error = [](const std::vector<Raw>& raw, double min_bucket_frac = 0.0025,
                          double max_size_ratio = 1.2) {
        auto dist = Distribution::from_points(raw, 1000000, min_bucket_frac, max_size_ratio);
        EXPECT_FALSE(dist);
        return dist ? std::string() : dist.error();
    };
    expect_one_line_error(error({}), "no points");
    expect_one_line_error(error({{0, 1.0}}), "row 0: length must be > 0");
    expect_one_line_error(error({{8, 1.0}, {16, 0.0}}), "row 1: weight");
    expect_one_line_error(error({{8, 1.0}, {16, -1.0}}), "row 1: weight");
    expect_one_line_error(error({{8, 1.0}, {8, 1.0}}), "row 1: length 8 not greater");
    expect_one_line_error(error({{8, 1.0}, {4, 1.0}}), "row 1: length 4 not greater");
    expect_one_line_error(error({{8, 1.7e308}, {16, 1.7e308}}), "infinity");
    expect_one_line_error(error({{8, 1.0}}, -0.1), "min_bucket_frac");
    expect_one_line_error(error({{8, 1.0}}, std::nan("")), "min_bucket_frac");
    expect_one_line_error(error({{8, 1.0}}, 0.0025, -1.0), "max_size_ratio");
}

// --- Data directory ---------------------------------------------------------

TEST(default_data_dir, follows_uhoma_source_dir) {
    const char* saved = std::getenv("UHOMA_SOURCE_DIR");
    const std::string old = saved == nullptr ? std::string() : saved;
    ::setenv("UHOMA_SOURCE_DIR", "/src/uhoma", 1);
    EXPECT_EQ(default_data_dir(), "/src/uhoma/data/workloads");
    ::unsetenv("UHOMA_SOURCE_DIR");
    const std::string fallback = default_data_dir();
    EXPECT_TRUE(fallback.ends_with("data/workloads")) << fallback;
    if (saved != nullptr) ::setenv("UHOMA_SOURCE_DIR", old.c_str(), 1);
}

}  // namespace
}  // namespace uhoma::workload
