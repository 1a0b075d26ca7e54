// Tests of tests/support/netns.{h,cc}: the namespace cluster used by
// integration tests. Everything that builds namespaces needs root and skips
// otherwise. Reachability and loss are checked with UDP and raw IP protocol
// 146 sockets opened inside the hosts, and with ping when it is installed.
#include "support/netns.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using uhoma::Expected;
using uhoma::testing::netns_available;
using uhoma::testing::NetnsCluster;
using uhoma::testing::NetnsScope;
using uhoma::testing::run_command;
using uhoma::testing::run_in_netns;
using uhoma::testing::socket_in_netns;

#define REQUIRE_NETNS()                                                      \
    do {                                                                     \
        if (!netns_available()) GTEST_SKIP() << "needs root and `ip netns`"; \
    } while (0)

// Unique per process and per call, as NetnsCluster requires.
std::string unique_prefix(const std::string& tag) {
    return "uhn" + std::to_string(::getpid()) + tag;
}

bool namespace_exists(const std::string& name) {
    struct stat st {};
    return ::stat(("/run/netns/" + name).c_str(), &st) == 0;
}

std::string netns_list() {
    auto r = run_command({"ip", "netns", "list"});
    return r ? *r : std::string();
}

class Socket {
  public:
    explicit Socket(int fd) : fd_(fd) {}
    Socket(const Socket&) = delete;
    Socket& operator=(const Socket&) = delete;
    ~Socket() {
        if (fd_ >= 0) ::close(fd_);
    }
    int fd() const { return fd_; }

  private:
    int fd_;
};

sockaddr_in ipv4(const std::string& address, std::uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    EXPECT_EQ(::inet_pton(AF_INET, address.c_str(), &a.sin_addr), 1) << address;
    return a;
}

// Waits up to `idle_ms` for one packet on fd; returns its size or -1.
ssize_t receive(int fd, int idle_ms) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, idle_ms) <= 0) return -1;
    char buf[2048];
    return ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
}

// The first packet to a new neighbour waits for ARP, which can take a while
// on a loaded machine (CTest runs tests in parallel); later ones follow at once.
constexpr int kFirstWaitMs = 2000;
constexpr int kNextWaitMs = 300;

// Waits for up to `count` packets on fd; returns how many arrived.
int receive_all(int fd, int count) {
    int received = 0;
    while (received < count && receive(fd, received == 0 ? kFirstWaitMs : kNextWaitMs) >= 0) {
        ++received;
    }
    return received;
}

// Sends `count` UDP datagrams from host `from` to host `to`; returns how many
// arrived. Negative on setup error.
int udp_probe(const NetnsCluster& c, int from, int to, int count) {
    auto rx = socket_in_netns(c.ns(to), AF_INET, SOCK_DGRAM, 0);
    auto tx = socket_in_netns(c.ns(from), AF_INET, SOCK_DGRAM, 0);
    if (!rx || !tx) {
        ADD_FAILURE() << (rx ? tx.error() : rx.error());
        return -1;
    }
    Socket r(*rx), t(*tx);
    int big = 4 << 20;
    ::setsockopt(r.fd(), SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
    sockaddr_in local = ipv4(c.address(to), 0);
    if (::bind(r.fd(), reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0) {
        ADD_FAILURE() << "bind: " << std::strerror(errno);
        return -1;
    }
    socklen_t len = sizeof(local);
    ::getsockname(r.fd(), reinterpret_cast<sockaddr*>(&local), &len);
    for (int k = 0; k < count; ++k) {
        std::string payload = "probe " + std::to_string(k);
        if (::sendto(t.fd(), payload.data(), payload.size(), 0,
                     reinterpret_cast<const sockaddr*>(&local), sizeof(local)) < 0) {
            ADD_FAILURE() << "sendto: " << std::strerror(errno);
            return -1;
        }
    }
    return receive_all(r.fd(), count);
}

// Same with raw IPv4 sockets of protocol 146 (Homa's), as the raw driver uses.
int raw146_probe(const NetnsCluster& c, int from, int to, int count) {
    auto rx = socket_in_netns(c.ns(to), AF_INET, SOCK_RAW, 146);
    auto tx = socket_in_netns(c.ns(from), AF_INET, SOCK_RAW, 146);
    if (!rx || !tx) {
        ADD_FAILURE() << (rx ? tx.error() : rx.error());
        return -1;
    }
    Socket r(*rx), t(*tx);
    sockaddr_in dest = ipv4(c.address(to), 0);
    for (int k = 0; k < count; ++k) {
        std::string payload = "homa probe " + std::to_string(k);
        if (::sendto(t.fd(), payload.data(), payload.size(), 0,
                     reinterpret_cast<const sockaddr*>(&dest), sizeof(dest)) < 0) {
            ADD_FAILURE() << "sendto: " << std::strerror(errno);
            return -1;
        }
    }
    return receive_all(r.fd(), count);
}

bool have_ping() {
    return run_command({"sh", "-c", "command -v ping"}).has_value();
}

Expected<std::string, std::string> ping(const NetnsCluster& c, int from, int to) {
    return c.exec(from, std::vector<std::string>{"ping", "-c", "1", "-W", "1", c.address(to)});
}

TEST(netns, netns_available__true_only_for_root) {
    if (::geteuid() != 0) {
        EXPECT_FALSE(netns_available());
    } else {
        EXPECT_TRUE(netns_available());
    }
}

TEST(netns, create__rejects_bad_arguments) {
    // Checked before anything else, so this runs without root too.
    for (int hosts : {0, -1, NetnsCluster::kMaxHosts + 1}) {
        auto c = NetnsCluster::create(hosts, unique_prefix("a"));
        ASSERT_FALSE(c);
        EXPECT_NE(c.error().find("hosts"), std::string::npos) << c.error();
    }
    for (std::string prefix : {std::string(), std::string("a b"), std::string("-x"),
                               std::string("x/y"), std::string(33, 'p')}) {
        auto c = NetnsCluster::create(2, prefix);
        ASSERT_FALSE(c) << prefix;
        EXPECT_NE(c.error().find("prefix"), std::string::npos) << c.error();
    }
}

TEST(netns, run_command__returns_stdout_and_one_line_errors) {
    auto ok = run_command({"sh", "-c", "echo hello"});
    ASSERT_TRUE(ok) << ok.error();
    EXPECT_EQ(*ok, "hello\n");

    auto bad = run_command({"sh", "-c", "echo first >&2; echo second >&2; exit 3"});
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().find("exit status 3"), std::string::npos) << bad.error();
    EXPECT_NE(bad.error().find("first; second"), std::string::npos) << bad.error();
    EXPECT_EQ(bad.error().find('\n'), std::string::npos) << bad.error();

    auto missing = run_command({"uhoma-no-such-program"});
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().find("cannot start"), std::string::npos) << missing.error();
}

TEST(netns, run_command__kills_on_timeout) {
    auto r = run_command({"sleep", "10"}, std::chrono::milliseconds(200));
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().find("timed out"), std::string::npos) << r.error();
}

TEST(netns, run_command__does_not_wait_for_background_children) {
    // The background sleep keeps stdout open; the call returns at sh's exit.
    auto start = std::chrono::steady_clock::now();
    auto r = run_command({"sh", "-c", "sleep 3 & echo done"}, std::chrono::seconds(10));
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(*r, "done\n");
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
}

TEST(netns, create__builds_hosts_on_one_subnet) {
    REQUIRE_NETNS();
    auto c = NetnsCluster::create(3, unique_prefix("b"));
    ASSERT_TRUE(c) << c.error();
    EXPECT_EQ(c->hosts(), 3);
    std::string list = netns_list();
    EXPECT_NE(list.find(c->switch_ns()), std::string::npos) << list;
    std::string subnet;
    for (int i = 0; i < 3; ++i) {
        EXPECT_EQ(c->ns(i), c->prefix() + "-h" + std::to_string(i));
        EXPECT_TRUE(namespace_exists(c->ns(i)));
        std::string a = c->address(i);
        ASSERT_EQ(a.rfind("10.", 0), 0u) << a;
        EXPECT_EQ(a.substr(a.rfind('.') + 1), std::to_string(i + 1));
        if (i == 0) subnet = a.substr(0, a.rfind('.'));
        EXPECT_EQ(a.substr(0, a.rfind('.')), subnet);

        auto addr = c->exec(i, "ip -4 -o addr show dev eth0");
        ASSERT_TRUE(addr) << addr.error();
        EXPECT_NE(addr->find(a + "/24"), std::string::npos) << *addr;
        auto link = c->exec(i, std::vector<std::string>{"ip", "-o", "link", "show", "dev", "eth0"});
        ASSERT_TRUE(link) << link.error();
        EXPECT_NE(link->find("mtu 1500"), std::string::npos) << *link;
        EXPECT_NE(link->find("state UP"), std::string::npos) << *link;
        auto lo = c->exec(i, "ip -o link show dev lo");
        ASSERT_TRUE(lo) << lo.error();
        EXPECT_NE(lo->find(",UP"), std::string::npos) << *lo;
        auto port = run_command(
            {"ip", "-n", c->switch_ns(), "-o", "link", "show", "dev", c->switch_port(i)});
        ASSERT_TRUE(port) << port.error();
        EXPECT_NE(port->find("master br0"), std::string::npos) << *port;
    }
}

TEST(netns, create__hosts_exchange_udp_through_the_switch) {
    REQUIRE_NETNS();
    auto c = NetnsCluster::create(3, unique_prefix("c"));
    ASSERT_TRUE(c) << c.error();
    EXPECT_EQ(udp_probe(*c, 0, 1, 5), 5);
    EXPECT_EQ(udp_probe(*c, 1, 0, 5), 5);
    EXPECT_EQ(udp_probe(*c, 2, 0, 5), 5);
    EXPECT_EQ(udp_probe(*c, 1, 2, 5), 5);
    EXPECT_EQ(raw146_probe(*c, 0, 2, 5), 5);
}

TEST(netns, exec__ping_between_hosts) {
    REQUIRE_NETNS();
    if (!have_ping()) GTEST_SKIP() << "ping is not installed (Debian package iputils-ping)";
    auto c = NetnsCluster::create(2, unique_prefix("d"));
    ASSERT_TRUE(c) << c.error();
    auto r = ping(*c, 0, 1);
    EXPECT_TRUE(r) << r.error();
    r = ping(*c, 1, 0);
    EXPECT_TRUE(r) << r.error();
}

TEST(netns, exec__reports_failure_in_one_line) {
    REQUIRE_NETNS();
    auto c = NetnsCluster::create(1, unique_prefix("e"));
    ASSERT_TRUE(c) << c.error();
    auto ok = c->exec(0, "echo hi");
    ASSERT_TRUE(ok) << ok.error();
    EXPECT_EQ(*ok, "hi\n");
    auto bad = c->exec(0, "echo oops >&2; exit 4");
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().find("exit status 4: oops"), std::string::npos) << bad.error();
    EXPECT_NE(bad.error().find(c->ns(0)), std::string::npos) << bad.error();
    EXPECT_EQ(bad.error().find('\n'), std::string::npos) << bad.error();
    auto slow = c->exec(0, "sleep 10", std::chrono::milliseconds(200));
    ASSERT_FALSE(slow);
    EXPECT_NE(slow.error().find("timed out"), std::string::npos) << slow.error();
}

TEST(netns, set_loss__full_loss_drops_udp_at_that_host_until_cleared) {
    REQUIRE_NETNS();
    auto c = NetnsCluster::create(2, unique_prefix("f"));
    ASSERT_TRUE(c) << c.error();
    ASSERT_EQ(udp_probe(*c, 0, 1, 5), 5);

    auto r = c->set_loss(1, 1.0);
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(udp_probe(*c, 0, 1, 20), 0);
    EXPECT_EQ(udp_probe(*c, 1, 0, 5), 5);  // only host 1's input loses

    c->clear_loss(1);
    EXPECT_EQ(udp_probe(*c, 0, 1, 5), 5);
}

TEST(netns, set_loss__full_loss_drops_raw_protocol_146) {
    REQUIRE_NETNS();
    auto c = NetnsCluster::create(2, unique_prefix("g"));
    ASSERT_TRUE(c) << c.error();
    ASSERT_EQ(raw146_probe(*c, 0, 1, 5), 5);
    auto r = c->set_loss(1, 1.0);
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(raw146_probe(*c, 0, 1, 20), 0);
    c->clear_loss(1);
    EXPECT_EQ(raw146_probe(*c, 0, 1, 5), 5);
}

TEST(netns, set_loss__leaves_icmp_alone) {
    REQUIRE_NETNS();
    if (!have_ping()) GTEST_SKIP() << "ping is not installed (Debian package iputils-ping)";
    auto c = NetnsCluster::create(2, unique_prefix("h"));
    ASSERT_TRUE(c) << c.error();
    auto r = c->set_loss(1, 1.0);
    ASSERT_TRUE(r) << r.error();
    auto p = ping(*c, 0, 1);
    EXPECT_TRUE(p) << p.error();
}

TEST(netns, set_loss__partial_probability_drops_some) {
    REQUIRE_NETNS();
    auto c = NetnsCluster::create(2, unique_prefix("i"));
    ASSERT_TRUE(c) << c.error();
    ASSERT_EQ(udp_probe(*c, 0, 1, 1), 1);  // resolve ARP first
    auto r = c->set_loss(1, 0.5);
    ASSERT_TRUE(r) << r.error();
    // Binomial(400, 0.5): mean 200, sd 10; the bounds are 8 sd away.
    int got = udp_probe(*c, 0, 1, 400);
    EXPECT_GT(got, 120);
    EXPECT_LT(got, 280);
}

TEST(netns, set_loss__replaces_the_previous_setting) {
    REQUIRE_NETNS();
    auto c = NetnsCluster::create(2, unique_prefix("j"));
    ASSERT_TRUE(c) << c.error();
    ASSERT_TRUE(c->set_loss(1, 1.0));
    ASSERT_TRUE(c->set_loss(1, 1.0));
    EXPECT_EQ(udp_probe(*c, 0, 1, 5), 0);
    auto r = c->set_loss(1, 0.0);
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(udp_probe(*c, 0, 1, 5), 5);
    c->clear_loss(1);
    c->clear_loss(0);  // never set: nothing to do
    EXPECT_EQ(udp_probe(*c, 0, 1, 5), 5);
}

TEST(netns, set_loss__rejects_bad_probability) {
    REQUIRE_NETNS();
    auto c = NetnsCluster::create(2, unique_prefix("k"));
    ASSERT_TRUE(c) << c.error();
    for (double p : {-0.1, 1.01, std::nan("")}) {
        auto r = c->set_loss(1, p);
        ASSERT_FALSE(r) << p;
        EXPECT_NE(r.error().find("probability"), std::string::npos) << r.error();
    }
    EXPECT_EQ(udp_probe(*c, 0, 1, 5), 5);
}

TEST(netns, destructor__removes_namespaces) {
    REQUIRE_NETNS();
    std::vector<std::string> names;
    {
        auto c = NetnsCluster::create(2, unique_prefix("l"));
        ASSERT_TRUE(c) << c.error();
        names = {c->switch_ns(), c->ns(0), c->ns(1)};
        ASSERT_TRUE(c->set_loss(0, 0.5));
        std::string list = netns_list();
        for (const auto& n : names) EXPECT_NE(list.find(n), std::string::npos) << n;
    }
    std::string list = netns_list();
    for (const auto& n : names) {
        EXPECT_EQ(list.find(n), std::string::npos) << n << " in " << list;
        EXPECT_FALSE(namespace_exists(n)) << n;
    }
}

TEST(netns, destructor__runs_when_a_test_throws) {
    REQUIRE_NETNS();
    const std::string prefix = unique_prefix("m");
    std::vector<std::string> names;
    try {
        auto c = NetnsCluster::create(2, prefix);
        ASSERT_TRUE(c) << c.error();
        names = {c->switch_ns(), c->ns(0), c->ns(1)};
        throw std::runtime_error("test failed half way");
    } catch (const std::runtime_error&) {
    }
    ASSERT_EQ(names.size(), 3u);
    for (const auto& n : names) EXPECT_FALSE(namespace_exists(n)) << n;
}

// True once `pid` is gone or a zombie (waiting for a reaper that is not us).
bool process_gone(long pid) {
    for (int k = 0; k < 200; ++k) {
        std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
        std::string line;
        if (!stat || !std::getline(stat, line)) return true;
        auto close = line.rfind(')');
        if (close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'Z') {
            return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
}

TEST(netns, destructor__kills_processes_left_in_the_namespaces) {
    REQUIRE_NETNS();
    std::vector<long> pids;
    {
        auto c = NetnsCluster::create(1, unique_prefix("n"));
        ASSERT_TRUE(c) << c.error();
        auto r = c->exec(0, "sleep 60 >/dev/null 2>&1 & echo started");
        ASSERT_TRUE(r) << r.error();
        auto listed = run_command({"ip", "netns", "pids", c->ns(0)});
        ASSERT_TRUE(listed) << listed.error();
        std::istringstream in(*listed);
        for (long pid = 0; in >> pid;) pids.push_back(pid);
        ASSERT_FALSE(pids.empty());
    }
    for (long pid : pids) EXPECT_TRUE(process_gone(pid)) << pid;
}

TEST(netns, create__removes_leftovers_with_the_same_prefix) {
    REQUIRE_NETNS();
    const std::string prefix = unique_prefix("o");
    const std::string other = prefix + "x";  // another prefix: must survive
    ASSERT_TRUE(run_command({"ip", "netns", "add", prefix + "-h7"}));
    ASSERT_TRUE(run_command({"ip", "netns", "add", prefix + "-sw"}));
    ASSERT_TRUE(run_command({"ip", "netns", "add", other + "-h0"}));
    struct DeleteOther {
        std::string name;
        ~DeleteOther() { static_cast<void>(run_command({"ip", "netns", "del", name})); }
    } delete_other{other + "-h0"};
    {
        auto c = NetnsCluster::create(2, prefix);
        EXPECT_TRUE(c) << (c ? "" : c.error());
        EXPECT_FALSE(namespace_exists(prefix + "-h7"));
        EXPECT_TRUE(namespace_exists(prefix + "-sw"));  // the new switch
        EXPECT_TRUE(namespace_exists(other + "-h0"));
    }
    EXPECT_FALSE(namespace_exists(prefix + "-sw"));
    EXPECT_TRUE(namespace_exists(other + "-h0"));
}

TEST(netns, move__hands_ownership_over) {
    REQUIRE_NETNS();
    std::string name;
    {
        std::optional<NetnsCluster> kept;
        {
            auto c = NetnsCluster::create(1, unique_prefix("p"));
            ASSERT_TRUE(c) << c.error();
            name = c->ns(0);
            kept.emplace(std::move(*c));
        }  // the moved-from cluster is gone; the namespaces are not
        EXPECT_TRUE(namespace_exists(name));
        EXPECT_EQ(kept->ns(0), name);
        EXPECT_EQ(udp_probe(*kept, 0, 0, 1), 1);
    }
    EXPECT_FALSE(namespace_exists(name));
}

TEST(netns, netns_scope__enters_and_returns) {
    REQUIRE_NETNS();
    auto c = NetnsCluster::create(1, unique_prefix("q"));
    ASSERT_TRUE(c) << c.error();
    struct stat home {};
    ASSERT_EQ(::stat("/proc/thread-self/ns/net", &home), 0);
    {
        auto scope = NetnsScope::enter(c->ns(0));
        ASSERT_TRUE(scope) << scope.error();
        struct stat inside {};
        ASSERT_EQ(::stat("/proc/thread-self/ns/net", &inside), 0);
        EXPECT_NE(inside.st_ino, home.st_ino);
        // The host's address can be bound only inside its namespace.
        int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
        sockaddr_in a = ipv4(c->address(0), 0);
        EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
        ::close(fd);
    }
    struct stat after {};
    ASSERT_EQ(::stat("/proc/thread-self/ns/net", &after), 0);
    EXPECT_EQ(after.st_ino, home.st_ino);

    auto missing = NetnsScope::enter(c->prefix() + "-nosuch");
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().find("-nosuch"), std::string::npos) << missing.error();
}

TEST(netns, run_in_netns__runs_the_function_in_the_namespace) {
    REQUIRE_NETNS();
    auto c = NetnsCluster::create(2, unique_prefix("r"));
    ASSERT_TRUE(c) << c.error();
    const std::string address = c->address(1);
    auto bind_own_address = [&address] {
        int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        ::inet_pton(AF_INET, address.c_str(), &a.sin_addr);
        int rc = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
        ::close(fd);
        return rc == 0 ? 7 : 3;
    };
    auto in1 = run_in_netns(c->ns(1), bind_own_address);
    ASSERT_TRUE(in1) << in1.error();
    EXPECT_EQ(*in1, 7);
    auto in0 = run_in_netns(c->ns(0), bind_own_address);
    ASSERT_TRUE(in0) << in0.error();
    EXPECT_EQ(*in0, 3);

    auto threw = run_in_netns(c->ns(0), []() -> int { throw std::runtime_error("boom"); });
    ASSERT_FALSE(threw);
    EXPECT_NE(threw.error().find("boom"), std::string::npos) << threw.error();

    auto slow = run_in_netns(
        c->ns(0),
        [] {
            ::sleep(10);
            return 0;
        },
        std::chrono::milliseconds(200));
    ASSERT_FALSE(slow);
    EXPECT_NE(slow.error().find("timed out"), std::string::npos) << slow.error();

    auto nowhere = run_in_netns(c->prefix() + "-nosuch", [] { return 0; });
    ASSERT_FALSE(nowhere);
}

}  // namespace
