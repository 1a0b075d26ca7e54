// Adapter: an engine plus an application callback, attached to the Fabric.
// Header-only so uhoma_test_support does not depend on the engine library;
// tests that use it link uhoma_engine.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "engine/engine.h"
#include "support/fabric.h"

namespace uhoma::testing {

class EngineHost : public FabricHost {
public:
    // `app` runs after every input the engine handles, at the same virtual
    // time, like an application thread woken by the runtime.
    EngineHost(std::unique_ptr<engine::Engine> engine, std::function<void(engine::Instant)> app)
        : engine_(std::move(engine)), app_(std::move(app)) {}

    engine::Engine& engine() { return *engine_; }
    void set_app(std::function<void(engine::Instant)> app) { app_ = std::move(app); }

    void handle_packet(std::span<const std::byte> bytes, engine::Address source,
                       engine::Instant now) override {
        engine_->handle_packet(bytes, source, now);
        if (app_) app_(now);
    }
    void handle_timeout(engine::Instant now) override {
        engine_->handle_timeout(now);
        if (app_) app_(now);
    }
    std::optional<engine::Transmit> poll_transmit(engine::Instant now) override {
        return engine_->poll_transmit(now);
    }
    engine::Instant next_deadline() const override { return engine_->next_deadline(); }

private:
    std::unique_ptr<engine::Engine> engine_;
    std::function<void(engine::Instant)> app_;
};

}  // namespace uhoma::testing
