// SPDX-License-Identifier: Apache-2.0
// Behaviour every Store back end must have; instantiated for SQLite and PostgreSQL.
#pragma once

#include <functional>
#include <memory>

#include "fg/gallery/store.h"
#include "fg/testing/testing.h"

namespace fg::gallery::testing {

/// Makes a fresh, empty store (skips the test when the back end is unavailable).
using StoreFactory = std::function<std::unique_ptr<Store>()>;

class StoreContract : public ::testing::TestWithParam<StoreFactory> {
  protected:
    void SetUp() override {
        store_ = GetParam()();
        if (!store_) GTEST_SKIP() << "store back end unavailable";
    }
    std::unique_ptr<Store> store_;
};

inline TemplateRecord Rec(const std::string& subject, std::uint8_t fill = 1) {
    TemplateRecord r;
    r.subject_id = subject;
    r.model_id = "m";
    r.dim = 4;
    r.key_id = "k";
    r.sealed = std::vector<std::uint8_t>(32, fill);
    r.quality = 0.5f;
    r.source = "src";
    return r;
}

TEST_P(StoreContract, SubjectsLifecycle) {
    EXPECT_EQ(*store_->Generation(), *store_->Generation());
    const std::int64_t g0 = *store_->Generation();
    ASSERT_TRUE(store_->CreateSubject({"alice", "Alice", R"({"team":"a"})"}).ok());
    EXPECT_GT(*store_->Generation(), g0);
    EXPECT_EQ(store_->CreateSubject({"alice", "Again"}).code(), StatusCode::kAlreadyExists);
    auto s = store_->GetSubject("alice");
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    EXPECT_EQ(s->display_name, "Alice");
    EXPECT_EQ(s->metadata, R"({"team":"a"})");
    ASSERT_TRUE(store_->RenameSubject("alice", "Alice B").ok());
    EXPECT_EQ(store_->GetSubject("alice")->display_name, "Alice B");
    ASSERT_TRUE(store_->UpdateMetadata("alice", R"({"x":1})").ok());
    EXPECT_EQ(store_->GetSubject("alice")->metadata, R"({"x":1})");
    EXPECT_EQ(store_->RenameSubject("nobody", "x").code(), StatusCode::kNotFound);
    EXPECT_EQ(store_->GetSubject("nobody").status().code(), StatusCode::kNotFound);
}

// Identify's name lookup: one query for every candidate; missing ids are simply absent.
TEST_P(StoreContract, DisplayNamesInOneBatch) {
    ASSERT_TRUE(store_->CreateSubject({"a", "Ann"}).ok());
    ASSERT_TRUE(store_->CreateSubject({"b", "Bo \"B\" O'Neil"}).ok());
    std::vector<std::string> ids = {"b", "nobody", "a", "a"};
    for (int i = 0; i < 1200; ++i) ids.push_back("x" + std::to_string(i));  // past one chunk
    auto names = store_->GetDisplayNames(ids);
    ASSERT_TRUE(names.ok()) << names.status().ToString();
    EXPECT_EQ(names->size(), 2u);
    EXPECT_EQ(names->at("a"), "Ann");
    EXPECT_EQ(names->at("b"), "Bo \"B\" O'Neil");
    EXPECT_TRUE(store_->GetDisplayNames({})->empty());
}

TEST_P(StoreContract, TemplatesMergeDeleteAndPaging) {
    std::vector<TemplateRecord> recs = {Rec("a", 1), Rec("a", 2)};
    auto ids = store_->AddTemplates(recs, Subject{"a", "A"});
    ASSERT_TRUE(ids.ok()) << ids.status().ToString();
    ASSERT_EQ(ids->size(), 2u);
    EXPECT_LT((*ids)[0], (*ids)[1]);
    std::vector<TemplateRecord> orphan = {Rec("missing")};
    EXPECT_EQ(store_->AddTemplates(orphan, std::nullopt).status().code(), StatusCode::kNotFound);
    std::vector<TemplateRecord> recs_b = {Rec("b", 3)};
    ASSERT_TRUE(store_->AddTemplates(recs_b, Subject{"b", "B"}).ok());
    EXPECT_EQ(*store_->CountTemplates(), 3);
    auto back = store_->GetTemplates("a");
    ASSERT_TRUE(back.ok());
    ASSERT_EQ(back->size(), 2u);
    EXPECT_EQ((*back)[1].sealed, std::vector<std::uint8_t>(32, 2));
    EXPECT_EQ((*back)[0].source, "src");

    ASSERT_TRUE(store_->MergeSubjects("b", "a").ok());
    EXPECT_EQ(store_->GetSubject("b").status().code(), StatusCode::kNotFound);
    EXPECT_EQ(store_->GetSubject("a")->face_count, 3);

    auto removed = store_->RemoveTemplate((*ids)[0]);
    ASSERT_TRUE(removed.ok());
    EXPECT_EQ(*removed, "a");
    EXPECT_EQ(store_->RemoveTemplate((*ids)[0]).status().code(), StatusCode::kNotFound);

    auto erased = store_->DeleteSubject("a");
    ASSERT_TRUE(erased.ok());
    EXPECT_EQ(erased->size(), 2u);
    EXPECT_EQ(*store_->CountTemplates(), 0);

    for (int i = 0; i < 25; ++i)
        ASSERT_TRUE(store_->CreateSubject({"s" + std::to_string(100 + i), ""}).ok());
    std::string after;
    int pages = 0, seen = 0;
    for (;;) {
        auto page = store_->ListSubjects(after, 10);
        ASSERT_TRUE(page.ok());
        seen += int(page->subjects.size());
        ++pages;
        if (page->next_after.empty()) break;
        after = page->next_after;
    }
    EXPECT_EQ(seen, 25);
    EXPECT_EQ(pages, 3);
    EXPECT_EQ(*store_->CountSubjects(), 25);
}

TEST_P(StoreContract, SettingsAndRotationUpdate) {
    EXPECT_FALSE(store_->GetSetting("x")->has_value());
    ASSERT_TRUE(store_->PutSetting("x", "1").ok());
    ASSERT_TRUE(store_->PutSetting("x", "2").ok());
    EXPECT_EQ(**store_->GetSetting("x"), "2");
    std::vector<TemplateRecord> recs = {Rec("a", 1)};
    auto ids = store_->AddTemplates(recs, Subject{"a", ""});
    ASSERT_TRUE(ids.ok());
    recs[0].sealed = std::vector<std::uint8_t>(40, 9);
    recs[0].key_id = "k2";
    ASSERT_TRUE(store_->UpdateSealed(recs).ok());
    auto back = store_->GetTemplates("a");
    EXPECT_EQ((*back)[0].key_id, "k2");
    EXPECT_EQ((*back)[0].sealed.size(), 40u);
    auto refs = store_->ListFaceRefs();
    ASSERT_EQ(refs->size(), 1u);
    EXPECT_EQ((*refs)[0].subject_id, "a");
}

TEST_P(StoreContract, BulkAddIsAllOrNothingWithAscendingIds) {
    // Enough rows for several multi-row statements (PostgreSQL sends 500 per statement).
    std::vector<Subject> create;
    std::vector<TemplateRecord> recs;
    for (int i = 0; i < 1203; ++i) {
        const std::string id = "p" + std::to_string(i / 2);  // two faces per subject
        if (i % 2 == 0) create.push_back(Subject{id, "", "{}"});
        recs.push_back(Rec(id, std::uint8_t(i)));
        recs.back().crop = i % 3 ? std::vector<std::uint8_t>{} : std::vector<std::uint8_t>(8, 7);
    }
    auto ids = store_->AddBulk(create, recs);
    ASSERT_TRUE(ids.ok()) << ids.status().ToString();
    ASSERT_EQ(ids->size(), recs.size());
    for (size_t i = 0; i < ids->size(); ++i) {
        EXPECT_EQ(recs[i].face_id, (*ids)[i]);
        if (i) EXPECT_LT((*ids)[i - 1], (*ids)[i]);
    }
    auto refs = store_->ListFaceRefs();
    ASSERT_TRUE(refs.ok());
    ASSERT_EQ(refs->size(), recs.size());
    for (size_t i = 0; i < refs->size(); ++i) {
        EXPECT_EQ((*refs)[i].face_id, (*ids)[i]);
        EXPECT_EQ((*refs)[i].subject_id, recs[i].subject_id);
    }
    auto back = store_->GetTemplates("p3");
    ASSERT_TRUE(back.ok());
    ASSERT_EQ(back->size(), 2u);
    EXPECT_EQ((*back)[0].sealed, recs[6].sealed);
    EXPECT_EQ((*back)[0].crop.size(), 8u);
    EXPECT_TRUE((*back)[1].crop.empty());

    // A record of a subject that does not exist: refused, and nothing of the batch is kept.
    std::vector<TemplateRecord> bad = {Rec("p0", 1), Rec("ghost", 2)};
    const std::int64_t before = *store_->CountTemplates();
    auto r = store_->AddBulk({}, bad);
    EXPECT_EQ(r.status().code(), StatusCode::kNotFound) << r.status().ToString();
    EXPECT_EQ(*store_->CountTemplates(), before);
    EXPECT_EQ(bad[0].face_id, 0);
}

}  // namespace fg::gallery::testing
