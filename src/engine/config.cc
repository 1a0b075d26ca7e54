#include "engine/config.h"

#include <charconv>
#include <functional>
#include <limits>

namespace uhoma::engine {

namespace {

ConfigError error(std::string_view field, std::string message) {
    return ConfigError{std::string(field), std::move(message)};
}

Expected<std::monostate, ConfigError> check_range(std::string_view field, std::uint64_t value,
                                                  std::uint64_t lo, std::uint64_t hi) {
    if (value >= lo && value <= hi) return std::monostate{};
    return Unexpected{error(field, "must be between " + std::to_string(lo) + " and " +
                                       std::to_string(hi) + " (got " + std::to_string(value) +
                                       ")")};
}

Expected<std::uint64_t, ConfigError> parse_u64(std::string_view name, std::string_view text) {
    std::uint64_t v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc{} || end != text.data() + text.size() || text.empty()) {
        return Unexpected{error(name, "not a non-negative integer: '" + std::string(text) + "'")};
    }
    return v;
}

template <typename T>
Expected<std::monostate, ConfigError> parse_array(std::string_view name, std::string_view text,
                                                  T& out) {
    T parsed{};
    std::size_t count = 0;
    std::size_t i = 0;
    while (i < text.size()) {
        while (i < text.size() && (text[i] == ' ' || text[i] == ',' || text[i] == '\t')) ++i;
        if (i == text.size()) break;
        std::size_t j = i;
        while (j < text.size() && text[j] != ' ' && text[j] != ',' && text[j] != '\t') ++j;
        auto v = parse_u64(name, text.substr(i, j - i));
        if (!v) return Unexpected{v.error()};
        if (count == parsed.size() ||
            *v > std::numeric_limits<typename T::value_type>::max()) {
            return Unexpected{error(name, "expects " + std::to_string(parsed.size()) +
                                              " numbers in range")};
        }
        parsed[count++] = static_cast<typename T::value_type>(*v);
        i = j;
    }
    if (count != parsed.size()) {
        return Unexpected{error(name, "expects " + std::to_string(parsed.size()) + " numbers")};
    }
    out = parsed;
    return std::monostate{};
}

struct Field {
    const char* name;
    std::function<Expected<std::monostate, ConfigError>(Config&, std::string_view)> set;
};

template <typename T>
Field scalar(const char* name, T Config::*member, std::uint64_t scale = 1) {
    return Field{name, [name, member, scale](Config& c, std::string_view text)
                           -> Expected<std::monostate, ConfigError> {
                     auto v = parse_u64(name, text);
                     if (!v) return Unexpected{v.error()};
                     const std::uint64_t scaled = *v / scale;
                     if (scaled > std::numeric_limits<T>::max()) {
                         return Unexpected{error(name, "too large: " + std::string(text))};
                     }
                     c.*member = static_cast<T>(scaled);
                     return std::monostate{};
                 }};
}

const std::vector<Field>& fields() {
    static const std::vector<Field> all = {
        scalar("unsched_bytes", &Config::unsched_bytes),
        scalar("window", &Config::window),
        scalar("max_incoming", &Config::max_incoming),
        scalar("max_overcommit", &Config::max_overcommit),
        scalar("grant_fifo_fraction", &Config::grant_fifo_fraction),
        scalar("fifo_grant_increment", &Config::fifo_grant_increment),
        scalar("num_priorities", &Config::num_priorities),
        Field{"priority_map",
              [](Config& c, std::string_view t) { return parse_array("priority_map", t, c.priority_map); }},
        Field{"unsched_cutoffs",
              [](Config& c, std::string_view t) {
                  return parse_array("unsched_cutoffs", t, c.unsched_cutoffs);
              }},
        scalar("link_mbps", &Config::link_mbps),
        scalar("max_nic_est_backlog_usecs", &Config::max_nic_est_backlog_usecs),
        scalar("max_nic_queue_ns", &Config::max_nic_est_backlog_usecs, 1000),  // old name
        scalar("defer_min_bytes", &Config::defer_min_bytes),
        scalar("throttle_min_bytes", &Config::defer_min_bytes),  // old name
        scalar("pacer_fifo_fraction", &Config::pacer_fifo_fraction),
        scalar("flags", &Config::flags),
        scalar("max_gso_size", &Config::max_gso_size),
        scalar("wmem_max", &Config::wmem_max),
        scalar("resend_ticks", &Config::resend_ticks),
        scalar("resend_interval", &Config::resend_interval),
        scalar("timeout_ticks", &Config::timeout_ticks),
        scalar("request_ack_ticks", &Config::request_ack_ticks),
        scalar("bpage_lease_usecs", &Config::bpage_lease_usecs),
        scalar("peer_gc_threshold", &Config::peer_gc_threshold),
        scalar("peer_idle_secs_max", &Config::peer_idle_secs_max),
        scalar("cutoff_interval_ms", &Config::cutoff_interval_ms),
        scalar("cutoff_min_messages", &Config::cutoff_min_messages),
        scalar("cutoff_min_drift_percent", &Config::cutoff_min_drift_percent),
        scalar("tick_usecs", &Config::tick_usecs),
        scalar("mtu", &Config::mtu),
        scalar("encapsulation_bytes", &Config::encapsulation_bytes),
    };
    return all;
}

}  // namespace

Expected<std::monostate, ConfigError> validate(const Config& c) {
    using R = Expected<std::monostate, ConfigError>;
    const R checks[] = {
        check_range("unsched_bytes", c.unsched_bytes, 1, 1000000),
        check_range("max_incoming", c.max_incoming, 1, std::numeric_limits<std::int32_t>::max()),
        check_range("max_overcommit", c.max_overcommit, 1, 8),
        check_range("grant_fifo_fraction", c.grant_fifo_fraction, 0, 500),
        check_range("num_priorities", c.num_priorities, 1, 8),
        check_range("link_mbps", c.link_mbps, 1, 10000000),
        check_range("pacer_fifo_fraction", c.pacer_fifo_fraction, 0, 500),
        check_range("resend_ticks", c.resend_ticks, 1, 1000000),
        check_range("resend_interval", c.resend_interval, 1, 1000000),
        check_range("timeout_ticks", c.timeout_ticks, c.resend_ticks, 10000000),
        check_range("request_ack_ticks", c.request_ack_ticks, 1, 1000000),
        check_range("tick_usecs", c.tick_usecs, 1, 1000000),
        check_range("mtu", c.mtu, 576, 65535),
        check_range("encapsulation_bytes", c.encapsulation_bytes, 0, 64),
    };
    for (const R& r : checks) {
        if (!r) return r;
    }
    for (std::uint8_t level : c.priority_map) {
        if (level > 7) return Unexpected{error("priority_map", "entries must be 0..7")};
    }
    // Read from the top level down, cutoffs must not shrink (spec 4); the
    // entry at index 0 and those >= num_priorities are forced by the engine.
    for (std::uint32_t i = c.num_priorities - 1; i > 1; --i) {
        if (c.unsched_cutoffs[i - 1] != 0 && c.unsched_cutoffs[i - 1] < c.unsched_cutoffs[i]) {
            return Unexpected{error("unsched_cutoffs",
                                    "must grow from the highest level down (entry " +
                                        std::to_string(i - 1) + " < entry " + std::to_string(i) +
                                        ")")};
        }
    }
    return std::monostate{};
}

Expected<std::monostate, ConfigError> set_parameter(Config& config, std::string_view name,
                                                    std::string_view value) {
    for (const Field& f : fields()) {
        if (name == f.name) return f.set(config, value);
    }
    return Unexpected{error(name, "unknown parameter")};
}

std::vector<std::string> parameter_names() {
    std::vector<std::string> names;
    for (const Field& f : fields()) names.emplace_back(f.name);
    return names;
}

}  // namespace uhoma::engine
