// uhoma::Expected: a value or an error, for APIs without output parameters.
//
// C++20 has no std::expected, and uhoma's hot paths avoid exceptions, so every
// fallible function returns Expected<T, E>. It is deliberately small: construct
// from a T or from Unexpected<E>, test with has_value(), read with value() or
// error(). Reading the wrong side is a programming error and aborts in every
// build mode rather than being undefined.
#pragma once

#include <cstdlib>
#include <type_traits>
#include <utility>
#include <variant>

namespace uhoma {

template <typename E>
struct Unexpected {
    E error;
};

template <typename E>
Unexpected(E) -> Unexpected<E>;

template <typename T, typename E>
class [[nodiscard]] Expected {
public:
    Expected(T value) : state_(std::in_place_index<0>, std::move(value)) {}  // NOLINT
    Expected(Unexpected<E> u) : state_(std::in_place_index<1>, std::move(u.error)) {}  // NOLINT

    bool has_value() const { return state_.index() == 0; }
    explicit operator bool() const { return has_value(); }

    T& value() & {
        check(0);
        return std::get<0>(state_);
    }
    const T& value() const& {
        check(0);
        return std::get<0>(state_);
    }
    T&& value() && {
        check(0);
        return std::get<0>(std::move(state_));
    }
    const E& error() const {
        check(1);
        return std::get<1>(state_);
    }

    template <typename U>
    T value_or(U&& fallback) const& {
        return has_value() ? std::get<0>(state_) : static_cast<T>(std::forward<U>(fallback));
    }

    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T&& operator*() && { return std::move(*this).value(); }

private:
    void check(std::size_t index) const {
        if (state_.index() != index) std::abort();
    }
    std::variant<T, E> state_;
};

}  // namespace uhoma
