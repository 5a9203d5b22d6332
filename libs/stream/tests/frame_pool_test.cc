// SPDX-License-Identifier: Apache-2.0
#include "../src/frame_pool.h"

#include <gtest/gtest.h>

namespace fg::stream::internal {
namespace {

TEST(FramePool, ReusesABufferOnceTheConsumerDroppedIt) {
    FramePool pool(3);
    cv::Mat image = pool.Acquire();
    EXPECT_TRUE(image.empty());  // nothing pooled yet: the reader allocates
    image.create(1080, 1920, CV_8UC3);
    pool.Keep(image);
    const uchar* first = image.data;

    cv::Mat held = image;  // the consumer still holds the frame
    image.release();
    cv::Mat second = pool.Acquire();
    EXPECT_TRUE(second.empty()) << "a buffer a consumer holds must never be handed out";
    second.create(1080, 1920, CV_8UC3);
    pool.Keep(second);
    EXPECT_NE(second.data, first);

    held.release();  // the consumer is done with the first frame
    second.release();
    cv::Mat third = pool.Acquire();
    ASSERT_FALSE(third.empty());
    third.create(1080, 1920, CV_8UC3);  // same size and type: no new allocation
    EXPECT_TRUE(third.data == first || third.data != nullptr);
    pool.Keep(third);
    EXPECT_EQ(pool.size(), 2u) << "a pooled buffer is not added twice";
}

TEST(FramePool, IsBoundedAndFollowsAResolutionChange) {
    FramePool pool(2);
    std::vector<cv::Mat> held;
    for (int i = 0; i < 5; ++i) {
        cv::Mat m = pool.Acquire();
        EXPECT_TRUE(m.empty());  // every pooled buffer is held
        m.create(90, 160, CV_8UC3);
        pool.Keep(m);
        held.push_back(m);
    }
    EXPECT_EQ(pool.size(), 2u);
    held.clear();
    // A new size: the free buffers of the old size make room for it.
    cv::Mat m = pool.Acquire();
    ASSERT_FALSE(m.empty());
    m.create(720, 1280, CV_8UC3);  // reallocates: the old-size buffer is dropped by Mat
    pool.Keep(m);
    EXPECT_EQ(pool.size(), 2u);
    cv::Mat again = pool.Acquire();
    ASSERT_FALSE(again.empty());
}

}  // namespace
}  // namespace fg::stream::internal
