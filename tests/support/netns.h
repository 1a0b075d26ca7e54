// An emulated cluster of Linux network namespaces for integration tests
// (root only): N hosts on one bridge, with commands, sockets and functions
// run inside a host, and random packet loss at a host's input.
//
// Design notes
// ------------
// Topology. Always a switch, even for 2 hosts, so every test sees the same
// path and later tests can shape traffic on the switch's egress ports (the
// emu.sh layout of shared/notes/network-lab.md table 7):
//
//   <prefix>-h<i>: lo (up), eth0 = 10.X.Y.(i+1)/24, MTU 1500
//        | veth pair
//   <prefix>-sw:   p<i> -- bridge br0 (STP off, so ports forward at once)
//
// create() returns once every switch port has carrier and forwards.
// Both veth ends are created directly inside their namespaces, so nothing
// appears in the root namespace and interface names cannot clash with other
// clusters. X.Y comes from a hash of the prefix (X in 128..247, never the
// lab's 10.77-10.79); addresses exist only inside the cluster's namespaces,
// so two clusters with equal X.Y would still not interfere.
//
// Lifetime. The cluster owns every namespace it made and deletes them in its
// destructor, also when create() fails half way, on early returns and on
// exceptions (create() builds into a local object whose destructor runs).
// Deleting a namespace first SIGKILLs the processes still inside it (by pid,
// from `ip netns pids`; never this process), then removes it; its veth and
// bridge go with it. A test killed hard leaves namespaces behind: create()
// first deletes every `<prefix>-sw` and `<prefix>-h<digits>`, so reusing the
// prefix cleans up. Prefixes must be unique among concurrently running tests
// (e.g. "uh" + pid); CTest runs tests in parallel.
//
// Running things inside a host. exec() runs a program through
// `ip netns exec` (which also remounts /sys for the namespace, so tools that
// read /sys work). NetnsScope moves the calling *thread* into a namespace
// and back (setns); sockets keep the namespace they were created in, so a
// test can open sockets in several hosts from one thread (socket_in_netns).
// run_in_netns forks a child that enters the namespace and runs a function,
// for code that must live there (servers, anything that creates sockets
// itself). Programs are started with posix_spawn, never through a shell
// unless exec() is given a shell string; each failure is one line of text.
//
// Loss. set_loss(i, p) puts iptables rules in host i's INPUT path (a chain
// UHOMA_LOSS, so it replaces, never stacks): drop UDP and IP protocol 146
// packets with probability p (xt statistic, measured exact in the lab notes;
// netem does not exist on these machines). ICMP, ARP and TCP are not dropped,
// so `ping` still works under loss. IPv4 only, like the cluster. Loss in both
// directions needs set_loss on both hosts.
//
// Namespace: uhoma::testing. Inside namespace uhoma it hides GoogleTest's
// namespace, so code there must spell it ::testing.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <variant>
#include <vector>

#include "uhoma/expected.h"

namespace uhoma::testing {

inline constexpr std::chrono::milliseconds kCommandTimeout{30'000};

// Runs argv[0] (looked up in PATH) with argv, stdin from /dev/null, and waits
// for it. Returns its standard output. Errors (one line each): the program
// could not be started, it exited nonzero ("`argv...`: exit status N: <its
// stderr>"), it was killed by a signal, or it ran longer than `timeout` (its
// process group is then killed). Output from background processes it left
// behind is not waited for.
Expected<std::string, std::string> run_command(const std::vector<std::string>& argv,
                                               std::chrono::milliseconds timeout = kCommandTimeout);

// True when this process is root and `ip netns list` works: the precondition
// of everything below. Tests GTEST_SKIP otherwise. Computed once.
bool netns_available();

// Moves the calling thread into network namespace `ns` (a name from `ip netns
// list`) until destroyed, then back to the namespace it was in. Other threads
// are unaffected. Move-only; a moved-from scope does nothing.
class NetnsScope {
  public:
    // Errors: the namespace does not exist, or setns failed (not root).
    static Expected<NetnsScope, std::string> enter(const std::string& ns);

    NetnsScope(NetnsScope&& other) noexcept;
    NetnsScope& operator=(NetnsScope&& other) = delete;
    NetnsScope(const NetnsScope&) = delete;
    NetnsScope& operator=(const NetnsScope&) = delete;
    // Aborts if it cannot return (the thread would stay in the wrong
    // namespace).
    ~NetnsScope();

  private:
    explicit NetnsScope(int home_fd) : home_fd_(home_fd) {}
    int home_fd_ = -1;
};

// socket(domain, type, protocol) created inside namespace `ns`; the caller
// owns (and closes) the descriptor. Errors: entering `ns` failed, or socket()
// failed (text names the errno).
Expected<int, std::string> socket_in_netns(const std::string& ns, int domain, int type,
                                           int protocol);

// Forks a child that enters namespace `ns`, runs fn and exits with its
// return value (0..255). Returns that value. Errors: fork failed, the child
// could not enter the namespace, fn threw, the child died of a signal, or it
// ran longer than `timeout` (it is then killed). The child shares nothing
// with the parent after the fork; it must not use GoogleTest assertions
// (their failures would be lost) and ends with _exit.
Expected<int, std::string> run_in_netns(const std::string& ns, const std::function<int()>& fn,
                                        std::chrono::milliseconds timeout = kCommandTimeout);

class NetnsCluster {
  public:
    static constexpr int kMaxHosts = 250;
    static constexpr const char* kHostInterface = "eth0";
    static constexpr const char* kBridge = "br0";

    // Builds `hosts` hosts (1..kMaxHosts) behind one switch. `prefix`: 1 to
    // 32 characters of [A-Za-z0-9_-], not starting with '-'. First deletes
    // leftovers with the same prefix. Errors: bad arguments (checked before
    // anything else, also when not root), netns_available() is false, or a
    // command failed (its one-line error); whatever was built is deleted.
    static Expected<NetnsCluster, std::string> create(int hosts, const std::string& prefix);

    NetnsCluster(NetnsCluster&& other) noexcept;
    NetnsCluster& operator=(NetnsCluster&& other) noexcept;
    NetnsCluster(const NetnsCluster&) = delete;
    NetnsCluster& operator=(const NetnsCluster&) = delete;
    // Deletes every namespace the cluster made (and the processes in them).
    ~NetnsCluster();

    int hosts() const { return hosts_; }
    const std::string& prefix() const { return prefix_; }
    // Host i's namespace, "<prefix>-h<i>". Aborts if i is out of range (as do
    // all functions taking a host index).
    std::string ns(int i) const;
    // Host i's IPv4 address, "10.X.Y.(i+1)" (prefix length 24).
    std::string address(int i) const;
    // The switch's namespace, "<prefix>-sw", and host i's port on it, "p<i>".
    std::string switch_ns() const;
    std::string switch_port(int i) const;

    // Runs `sh -c cmd` in host i's namespace; returns its stdout. Errors as
    // run_command.
    Expected<std::string, std::string> exec(
        int i, const std::string& cmd, std::chrono::milliseconds timeout = kCommandTimeout) const;
    // Runs argv (no shell) in host i's namespace.
    Expected<std::string, std::string> exec(
        int i, const std::vector<std::string>& argv,
        std::chrono::milliseconds timeout = kCommandTimeout) const;

    // Drops UDP and IP-protocol-146 packets arriving at host i with
    // `probability` (0..1), replacing any earlier setting; 0 is clear_loss.
    // Errors: probability not in [0, 1] (or NaN), or an iptables command
    // failed.
    Expected<std::monostate, std::string> set_loss(int i, double probability);
    // Removes host i's loss rules. Best effort: a failure (the namespace is
    // gone) is reported on stderr.
    void clear_loss(int i);

    // Deletes every namespace named "<prefix>-sw" or "<prefix>-h<digits>".
    // Errors: the first deletion that failed (the others are still tried).
    static Expected<std::monostate, std::string> remove_leftovers(const std::string& prefix);

  private:
    NetnsCluster(std::string prefix, int hosts);
    void check_host(int i) const;
    Expected<std::monostate, std::string> add_namespace(const std::string& name);
    Expected<std::monostate, std::string> build();
    Expected<std::monostate, std::string> wait_until_forwarding() const;
    void destroy() noexcept;

    std::string prefix_;
    int hosts_ = 0;
    std::uint8_t subnet_x_ = 0;  // 10.X.Y.0/24
    std::uint8_t subnet_y_ = 0;
    std::vector<std::string> namespaces_;  // created by this object, in order
    std::vector<bool> loss_chain_;         // host i has the UHOMA_LOSS chain
};

}  // namespace uhoma::testing
