// RingQueue: a FIFO on a growable circular buffer that keeps its capacity.
//
// std::deque allocates and frees a block every few elements as a queue
// drains and refills, which on the packet path (queued GRANTs, ready
// messages) means allocation per packet. A ring grows to the high-water mark
// once and then never allocates again.
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

namespace uhoma::engine {

template <typename T>
class RingQueue {
public:
    bool empty() const { return size_ == 0; }
    std::size_t size() const { return size_; }
    T& front() { return slots_[head_]; }
    const T& front() const { return slots_[head_]; }
    void push_back(T value) {
        if (size_ == slots_.size()) grow();
        slots_[(head_ + size_) % slots_.size()] = std::move(value);
        ++size_;
    }
    void pop_front() {
        head_ = (head_ + 1) % slots_.size();
        --size_;
    }
    // Element i from the front (i < size()).
    const T& operator[](std::size_t i) const { return slots_[(head_ + i) % slots_.size()]; }

private:
    void grow() {
        std::vector<T> bigger(slots_.empty() ? 16 : 2 * slots_.size());
        for (std::size_t i = 0; i < size_; ++i) bigger[i] = std::move(slots_[(head_ + i) % slots_.size()]);
        slots_ = std::move(bigger);
        head_ = 0;
    }
    std::vector<T> slots_;
    std::size_t head_ = 0;
    std::size_t size_ = 0;
};

}  // namespace uhoma::engine
