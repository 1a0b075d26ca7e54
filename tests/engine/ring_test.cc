#include "engine/ring.h"

#include <gtest/gtest.h>

#include <deque>
#include <random>

namespace uhoma::engine {
namespace {

TEST(RingQueue, push_back__fifo_order_across_growth) {
    RingQueue<int> q;
    for (int i = 0; i < 100; ++i) q.push_back(i);
    EXPECT_EQ(q.size(), 100u);
    for (int i = 0; i < 100; ++i) {
        EXPECT_EQ(q[0], i);
        EXPECT_EQ(q.front(), i);
        q.pop_front();
    }
    EXPECT_TRUE(q.empty());
}

TEST(RingQueue, pop_front__matches_deque_under_random_use) {
    RingQueue<int> q;
    std::deque<int> model;
    std::mt19937 rng(3);
    for (int step = 0; step < 20000; ++step) {
        if (model.empty() || rng() % 3 != 0) {
            q.push_back(step);
            model.push_back(step);
        } else {
            ASSERT_EQ(q.front(), model.front());
            q.pop_front();
            model.pop_front();
        }
        ASSERT_EQ(q.size(), model.size());
        if (!model.empty()) {
            ASSERT_EQ(q[model.size() - 1], model.back());
        }
    }
}

}  // namespace
}  // namespace uhoma::engine
