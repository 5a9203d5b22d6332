// SPDX-License-Identifier: Apache-2.0
#include "fg/api/event_hub.h"

#include <gtest/gtest.h>

namespace fg::api {
namespace {

events::Event Ev(const std::string& stream, std::uint64_t track) {
    events::Event e = events::MakeEvent(stream, events::TrackStarted{0.9f});
    e.track_id = track;
    return e;
}

TEST(EventHubTest, FansOutWithFilters) {
    EventHub hub(10);
    std::vector<std::string> all, cam2, recognized;
    hub.Subscribe({}, [&](const HubEvent& e) { all.push_back(e.id); return true; });
    hub.Subscribe({.stream = "cam2"}, [&](const HubEvent& e) { cam2.push_back(e.id); return true; });
    hub.Subscribe({.type = "recognized"}, [&](const HubEvent& e) { recognized.push_back(e.id); return true; });
    ASSERT_TRUE(hub.Publish(Ev("cam1", 1)).ok());
    ASSERT_TRUE(hub.Publish(Ev("cam2", 2)).ok());
    events::Event r = events::MakeEvent("cam1", events::Recognized{.subject_id = "alice",
                                                                   .best_shot_jpeg_base64 = "AAAA"});
    ASSERT_TRUE(hub.Publish(r).ok());
    EXPECT_EQ(all.size(), 3u);
    EXPECT_EQ(cam2.size(), 1u);
    ASSERT_EQ(recognized.size(), 1u);
    EXPECT_EQ(recognized[0], r.event_id);
    EXPECT_EQ(hub.stats().published, 3u);
}

TEST(EventHubTest, ResumesAfterLastEventId) {
    EventHub hub(3);
    std::vector<events::Event> evs;
    for (int i = 0; i < 5; ++i) {
        evs.push_back(Ev("cam", i));
        ASSERT_TRUE(hub.Publish(evs.back()).ok());
    }
    EXPECT_EQ(hub.backlog_size(), 3u);  // bounded
    std::vector<std::string> got;
    bool gap = false;
    auto sub = hub.Subscribe({.last_event_id = evs[2].event_id},
                             [&](const HubEvent& e) { got.push_back(e.id); return true; });
    EXPECT_FALSE(sub.gap);
    EXPECT_EQ(got, (std::vector<std::string>{evs[3].event_id, evs[4].event_id}));
    // An id that fell out of the backlog: a gap, replay from the oldest kept.
    got.clear();
    sub = hub.Subscribe({.last_event_id = evs[0].event_id, .on_gap = [&] { gap = true; }},
                        [&](const HubEvent& e) { got.push_back(e.id); return true; });
    EXPECT_TRUE(sub.gap);
    EXPECT_TRUE(gap);
    EXPECT_EQ(got.size(), 3u);
    EXPECT_EQ(got.front(), evs[2].event_id);
}

TEST(EventHubTest, DropsGoneSubscribersAndNeverCarriesImages) {
    EventHub hub(10);
    int calls = 0;
    std::string json;
    hub.Subscribe({}, [&](const HubEvent& e) { ++calls; json = e.json; return false; });
    EXPECT_EQ(hub.subscribers(), 1u);
    ASSERT_TRUE(hub.Publish(events::MakeEvent("cam", events::Recognized{.subject_id = "a",
                                                                        .best_shot_jpeg_base64 = "QUJD"}))
                    .ok());
    ASSERT_TRUE(hub.Publish(Ev("cam", 1)).ok());
    EXPECT_EQ(calls, 1);
    EXPECT_EQ(hub.subscribers(), 0u);
    EXPECT_EQ(json.find("QUJD"), std::string::npos);
}

}  // namespace
}  // namespace fg::api
