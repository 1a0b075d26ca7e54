// Message-length workloads (W1..W5, starve, fixed sizes) as Homa's
// util/dist.cc samples them.
//
// The benchmarks compare uhoma with kernel Homa, so a request-length stream
// must match the original's draw for draw: same table, same mean (it sets the
// Poisson rate), same mapping from a uniform draw to a length. The raw data
// lives in data/workloads/*.csv rather than in code so that check.py, the
// tests and this sampler read one copy; data/workloads/README.md specifies
// the rules this file implements, and they are reproduced, quirks included:
//
//  * A name that is a positive decimal integer N is a fixed size: the table
//    is the single point (N, 1.0), with no leading zero point and no
//    truncation.
//  * Otherwise the weights are normalized by their sum and walked in order
//    into a cumulative table that starts at (0, 0.0). A point is kept only
//    if it adds at least min_bucket_frac of the mass, or if the next raw
//    length is more than max_size_ratio times the last kept length; skipped
//    mass goes to the next kept point (merging rounds lengths up).
//  * A raw length >= max_length ends the table with (max_length, 1.0): the
//    whole tail sits at exactly max_length (truncation). max_length 0 means
//    no limit.
//  * If the raw list runs out first, the last point already kept gets
//    fraction 1.0. This hands the mass of trailing skipped points to a
//    shorter length (W1's maximum becomes 83912, not 100000).
//  * The mean is that of the final table, not of the raw data, and ignores
//    the benchmark's 12-byte minimum (the caller applies it after sampling).
//  * sample() draws u from std::uniform_real_distribution<double>(0, 1) and
//    returns the first table length whose fraction is >= u. Only table
//    lengths come out; 0 only when u is exactly 0.0 (about 2^-53).
//
// Sampling is a binary search over the (non-decreasing) fractions, which
// returns the same point as dist.cc's linear scan. Lengths are uint32 rather
// than dist.cc's int; every real workload length fits either.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "uhoma/expected.h"

namespace uhoma::workload {

struct Point {
    std::uint32_t length = 0;
    double cumulative_fraction = 0.0;  // fraction of messages <= length
    friend bool operator==(const Point&, const Point&) = default;
};

class Distribution {
public:
    // Builds the sampler for `name`: "w1".."w5" or "starve" (case-insensitive;
    // read from <data_dir>/W1.csv .. W5.csv, <data_dir>/starve.csv), or a
    // decimal integer N in 1..4294967295 for a fixed size (no file is read).
    // max_length 0 means no truncation; cp_node passes 1,000,000.
    // Errors (a one-line message): unknown workload name (including "0" and
    // signed or out-of-range integers); file missing, unreadable or too large;
    // missing or wrong header (line 1 must be "length,weight"); malformed line
    // N (not two fields, length not an integer in 1..4294967295, weight not a
    // finite number > 0, lengths not strictly increasing); no data rows;
    // weights summing to infinity; min_bucket_frac or max_size_ratio negative
    // or not finite.
    static Expected<Distribution, std::string> load(std::string_view name,
                                                    const std::string& data_dir,
                                                    std::uint32_t max_length = 1000000,
                                                    double min_bucket_frac = 0.0025,
                                                    double max_size_ratio = 1.2);

    // Builds the sampler from in-memory (length, weight) rows, as read from a
    // CSV (weights relative, normalized here).
    // Errors (a one-line message naming the 0-based row): no rows; a length
    // of 0; a weight not finite or not > 0; lengths not strictly increasing;
    // weights summing to infinity; min_bucket_frac or max_size_ratio negative
    // or not finite.
    static Expected<Distribution, std::string> from_points(
        std::span<const std::pair<std::uint32_t, double>> raw, std::uint32_t max_length = 1000000,
        double min_bucket_frac = 0.0025, double max_size_ratio = 1.2);

    // The cumulative table in increasing length order. For a workload it
    // starts with the (0, 0.0) point, as dist.cc's values()/cdf_fractions();
    // a fixed size has just its one point. The last fraction is 1.0.
    const std::vector<Point>& table() const { return table_; }
    // Mean message length of the table: sum of length * (fraction step).
    double mean() const { return mean_; }
    // One length drawn from the table; consumes exactly one
    // uniform_real_distribution<double>(0, 1) draw from `rng`, fixed sizes
    // included, so streams line up with dist.cc's.
    std::uint32_t sample(std::mt19937& rng) const;
    // The max_length this was built with (0 = no limit). A fixed size
    // ignores it but still reports it.
    std::uint32_t max_length() const { return max_length_; }

private:
    Distribution(std::vector<Point> table, std::uint32_t max_length);

    std::vector<Point> table_;
    double mean_ = 0.0;
    std::uint32_t max_length_ = 0;
};

// Where the workload CSVs live: $UHOMA_SOURCE_DIR/data/workloads if that
// variable is set and non-empty, else the directory compiled in as
// UHOMA_WORKLOAD_DIR, else "data/workloads" (relative to the working
// directory). Errors: none.
std::string default_data_dir();

}  // namespace uhoma::workload
