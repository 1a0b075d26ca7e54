// Workload tables: CSV reading, dist.cc's table rules, sampling. See
// workload.h for the design notes.
#include "workload/workload.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>

namespace uhoma::workload {
namespace {

using Raw = std::pair<std::uint32_t, double>;

// The workload CSVs are a few KB; anything far bigger is not one of them.
constexpr std::size_t kMaxFileBytes = 16 * 1024 * 1024;
// How much of a bad name or line an error message quotes.
constexpr std::size_t kMaxQuoted = 60;

Unexpected<std::string> fail(std::string message) {
    return Unexpected{std::move(message)};
}

// `text` made safe to quote inside a one-line message: control and non-ASCII
// bytes become '?', and long text is cut short with "...".
std::string quoted(std::string_view text) {
    std::string out = "'";
    for (std::size_t i = 0; i < text.size() && i < kMaxQuoted; ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        out += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
    }
    if (text.size() > kMaxQuoted) out += "...";
    out += "'";
    return out;
}

std::string_view trim(std::string_view text) {
    const auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r'; };
    while (!text.empty() && blank(text.front())) text.remove_prefix(1);
    while (!text.empty() && blank(text.back())) text.remove_suffix(1);
    return text;
}

std::string lower(std::string_view text) {
    std::string out(text);
    for (char& c : out) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return out;
}

// Parses all of `text` as a decimal uint32 (digits only: no sign, no blanks).
std::optional<std::uint32_t> parse_u32(std::string_view text) {
    std::uint32_t value = 0;
    const char* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (text.empty() || ec != std::errc{} || ptr != end) return std::nullopt;
    return value;
}

// Parses all of `text` as a double ("0.31094", "100", "1e-5").
std::optional<double> parse_double(std::string_view text) {
    double value = 0.0;
    const char* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (text.empty() || ec != std::errc{} || ptr != end) return std::nullopt;
    return value;
}

// Why a row cannot follow a row of length `previous` (0 = first row), or
// nullopt if it can.
std::optional<std::string> bad_row(std::uint32_t previous, std::uint32_t length, double weight) {
    if (length == 0) return "length must be > 0";
    if (!std::isfinite(weight) || weight <= 0.0) return "weight must be a finite number > 0";
    if (length <= previous) {
        return "length " + std::to_string(length) + " not greater than the previous length " +
               std::to_string(previous);
    }
    return std::nullopt;
}

std::optional<std::string> bad_parameters(double min_bucket_frac, double max_size_ratio) {
    if (!std::isfinite(min_bucket_frac) || min_bucket_frac < 0.0) {
        return "min_bucket_frac must be a finite number >= 0";
    }
    if (!std::isfinite(max_size_ratio) || max_size_ratio < 0.0) {
        return "max_size_ratio must be a finite number >= 0";
    }
    return std::nullopt;
}

// The whole file at `path`. Errors: cannot open, read error, too large.
Expected<std::string, std::string> read_file(const std::string& path) {
    std::FILE* file = std::fopen(path.c_str(), "rb");
    if (file == nullptr) {
        return fail("cannot open workload file " + quoted(path) + ": " + std::strerror(errno));
    }
    std::string data;
    std::array<char, 8192> chunk{};
    int error = 0;
    while (data.size() <= kMaxFileBytes) {
        const std::size_t n = std::fread(chunk.data(), 1, chunk.size(), file);
        data.append(chunk.data(), n);
        if (n < chunk.size()) {
            if (std::ferror(file) != 0) error = errno != 0 ? errno : EIO;
            break;
        }
    }
    std::fclose(file);
    if (error != 0) {
        return fail("cannot read workload file " + quoted(path) + ": " + std::strerror(error));
    }
    if (data.size() > kMaxFileBytes) {
        return fail("workload file " + quoted(path) + " is larger than " +
                    std::to_string(kMaxFileBytes) + " bytes");
    }
    return data;
}

// The rows of a "length,weight" CSV. Line 1 is the header; blank lines are
// skipped; fields may carry blanks around them and lines may end in CRLF.
// Errors: bad header, malformed line N, no data rows.
Expected<std::vector<Raw>, std::string> parse_csv(std::string_view text, const std::string& path) {
    std::vector<Raw> rows;
    std::size_t line_number = 0;
    bool header_seen = false;
    while (!text.empty()) {
        const std::size_t newline = text.find('\n');
        const std::string_view line =
            newline == std::string_view::npos ? text : text.substr(0, newline);
        text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);
        ++line_number;
        const std::string where = quoted(path) + " line " + std::to_string(line_number);

        const std::size_t comma = line.find(',');
        const std::string_view first =
            trim(comma == std::string_view::npos ? line : line.substr(0, comma));
        const std::string_view second =
            comma == std::string_view::npos ? std::string_view{} : trim(line.substr(comma + 1));
        if (!header_seen) {
            if (first != "length" || second != "weight") {
                return fail("workload file " + where + ": expected header 'length,weight', got " +
                            quoted(line));
            }
            header_seen = true;
            continue;
        }
        if (trim(line).empty()) continue;

        const auto length = parse_u32(first);
        const auto weight = parse_double(second);
        if (comma == std::string_view::npos || !length || !weight) {
            return fail("malformed workload file " + where + ": expected <length>,<weight>, got " +
                        quoted(line));
        }
        const std::uint32_t previous = rows.empty() ? 0 : rows.back().first;
        if (auto reason = bad_row(previous, *length, *weight)) {
            return fail("malformed workload file " + where + ": " + *reason);
        }
        rows.emplace_back(*length, *weight);
    }
    if (!header_seen) return fail("workload file " + quoted(path) + " is empty");
    if (rows.empty()) return fail("workload file " + quoted(path) + " has no data rows");
    return rows;
}

// dist.cc's table: README steps 2-3 (normalize, walk, merge, truncate, end
// of list). `raw` is already validated (non-empty, lengths increasing,
// weights positive, finite sum).
std::vector<Point> build_table(std::span<const Raw> raw, double total, std::uint32_t max_length,
                               double min_bucket_frac, double max_size_ratio) {
    std::vector<Point> table{{0, 0.0}};
    double cur = 0.0;
    for (std::size_t i = 0;; ++i) {
        if (i == raw.size()) {
            // End of list: mass of any trailing skipped points goes to the
            // last point already kept (dist.cc's behaviour).
            table.back().cumulative_fraction = 1.0;
            break;
        }
        const auto [length, weight] = raw[i];
        if (max_length != 0 && length >= max_length) {
            table.push_back({max_length, 1.0});
            break;
        }
        cur += weight / total;
        if (cur >= 1.0) {
            table.push_back({length, 1.0});
            break;
        }
        const double next = i + 1 < raw.size() ? static_cast<double>(raw[i + 1].first) : 0.0;
        const Point& last = table.back();
        if (cur - last.cumulative_fraction >= min_bucket_frac ||
            max_size_ratio * static_cast<double>(last.length) < next) {
            table.push_back({length, cur});
        }
    }
    return table;
}

}  // namespace

Distribution::Distribution(std::vector<Point> table, std::uint32_t max_length)
    : table_(std::move(table)), max_length_(max_length) {
    double previous = 0.0;
    for (const Point& point : table_) {
        mean_ += static_cast<double>(point.length) * (point.cumulative_fraction - previous);
        previous = point.cumulative_fraction;
    }
}

Expected<Distribution, std::string> Distribution::from_points(std::span<const Raw> raw,
                                                              std::uint32_t max_length,
                                                              double min_bucket_frac,
                                                              double max_size_ratio) {
    if (auto reason = bad_parameters(min_bucket_frac, max_size_ratio)) return fail(*reason);
    if (raw.empty()) return fail("workload has no points");
    double total = 0.0;
    for (std::size_t i = 0; i < raw.size(); ++i) {
        const std::uint32_t previous = i == 0 ? 0 : raw[i - 1].first;
        if (auto reason = bad_row(previous, raw[i].first, raw[i].second)) {
            return fail("workload row " + std::to_string(i) + ": " + *reason);
        }
        total += raw[i].second;
    }
    if (!std::isfinite(total)) return fail("workload weights sum to infinity");
    return Distribution(build_table(raw, total, max_length, min_bucket_frac, max_size_ratio),
                        max_length);
}

Expected<Distribution, std::string> Distribution::load(std::string_view name,
                                                       const std::string& data_dir,
                                                       std::uint32_t max_length,
                                                       double min_bucket_frac,
                                                       double max_size_ratio) {
    if (auto reason = bad_parameters(min_bucket_frac, max_size_ratio)) return fail(*reason);
    if (const auto fixed = parse_u32(name); fixed && *fixed != 0) {
        return Distribution({{*fixed, 1.0}}, max_length);
    }
    const std::string key = lower(name);
    std::string file;
    if (key == "w1" || key == "w2" || key == "w3" || key == "w4" || key == "w5") {
        file = "W" + key.substr(1) + ".csv";
    } else if (key == "starve") {
        file = "starve.csv";
    } else {
        return fail("unknown workload " + quoted(name) +
                    " (expected w1..w5, starve, or a length from 1 to 4294967295)");
    }
    const std::string path = data_dir.empty() ? file : data_dir + "/" + file;
    auto text = read_file(path);
    if (!text) return fail(text.error());
    auto rows = parse_csv(*text, path);
    if (!rows) return fail(rows.error());
    auto result = from_points(*rows, max_length, min_bucket_frac, max_size_ratio);
    if (!result) return fail("workload file " + quoted(path) + ": " + result.error());
    return result;
}

std::uint32_t Distribution::sample(std::mt19937& rng) const {
    const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
    // First point with fraction >= u; fractions never decrease, so this is
    // the point dist.cc's linear scan stops at.
    const auto it = std::lower_bound(
        table_.begin(), table_.end(), u,
        [](const Point& point, double value) { return point.cumulative_fraction < value; });
    return it == table_.end() ? table_.back().length : it->length;
}

std::string default_data_dir() {
    const char* source = std::getenv("UHOMA_SOURCE_DIR");
    if (source != nullptr && *source != '\0') return std::string(source) + "/data/workloads";
#ifdef UHOMA_WORKLOAD_DIR
    return UHOMA_WORKLOAD_DIR;
#else
    return "data/workloads";
#endif
}

}  // namespace uhoma::workload
