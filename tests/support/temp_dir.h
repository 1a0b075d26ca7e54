// A fresh temporary directory for one test, removed with its contents when
// the object goes (kept when UHOMA_KEEP_TEMP is set, for post-mortems).
#pragma once

#include <string>
#include <string_view>

namespace uhoma::testing {

class TempDir {
public:
    // A directory $TMPDIR/<prefix>-XXXXXX (or /tmp/...). A failure to create
    // it is reported as a test failure; ok() tells.
    explicit TempDir(std::string_view prefix = "uhoma");
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    bool ok() const { return !path_.empty(); }
    const std::string& path() const { return path_; }
    std::string file(std::string_view name) const { return path_ + "/" + std::string(name); }

private:
    std::string path_;
};

}  // namespace uhoma::testing
