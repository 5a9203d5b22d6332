// SPDX-License-Identifier: Apache-2.0
// The streaming export (JSON Lines, version 2) and import: round trip, bounded batches, errors
// naming their line, the version-1 document still read, and the pure per-line parser.
#include <algorithm>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "fg/gallery/export_format.h"
#include "fg/gallery/gallery.h"
#include "fg/testing/testing.h"
#include "test_util.h"

namespace fg::gallery {
namespace {

using ::fg::gallery::testing::kModel;
using ::fg::gallery::testing::Probe;
using ::fg::gallery::testing::Sample;

class ExportTest : public ::testing::Test {
  protected:
    std::unique_ptr<Gallery> Open(const std::string& name) {
        auto g = Gallery::Open({.location = (tmp_ / name).string(), .keys = keys_});
        EXPECT_TRUE(g.ok()) << g.status().ToString();
        return g.ok() ? std::move(*g) : nullptr;
    }
    // `people` subjects with `shots` templates each, in one bulk transaction.
    static void Fill(Gallery& g, int people, int shots) {
        std::vector<BulkFace> faces;
        for (int p = 0; p < people; ++p) {
            for (int s = 0; s < shots; ++s) {
                faces.push_back({"p" + std::to_string(p),
                                 {Sample(std::uint32_t(p), std::uint32_t(s)), 0.8f, "src"},
                                 "Person " + std::to_string(p)});
            }
        }
        auto r = g.EnrollBulk(faces, {.model_id = kModel, .force = true});
        ASSERT_TRUE(r.ok()) << r.status().ToString();
    }
    static std::string ExportText(Gallery& g) {
        std::ostringstream out;
        Status s = g.ExportTo(out);
        EXPECT_TRUE(s.ok()) << s.ToString();
        return out.str();
    }
    // subject -> its embeddings as written (exact text of the floats), from an export.
    static std::map<std::string, std::vector<std::vector<float>>> Faces(const std::string& text) {
        std::map<std::string, std::vector<std::vector<float>>> out;
        std::istringstream in(text);
        std::string line;
        while (std::getline(in, line)) {
            auto l = ParseExportLine(line);
            EXPECT_TRUE(l.ok()) << l.status().ToString();
            if (l.ok() && std::holds_alternative<ExportFace>(*l)) {
                auto& f = std::get<ExportFace>(*l);
                out[f.subject_id].push_back(f.embedding);
            }
        }
        return out;
    }
    fg::testing::TmpDir tmp_;
    std::shared_ptr<KeyRing> keys_ = testing::TestKeys();
};

TEST_F(ExportTest, StreamingRoundTripOfThousandsOfTemplates) {
    auto a = Open("a.db");
    Fill(*a, 1000, 3);
    ASSERT_TRUE(a->UpdateMetadata("p7", R"({"badge":17})").ok());
    ASSERT_TRUE(a->CreateSubject({"empty", "No Faces"}).ok());
    const std::string text = ExportText(*a);
    // A header, 1001 subject lines, 3000 face lines.
    EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1 + 1001 + 3000);
    EXPECT_EQ(text.rfind(R"({"dim":64,)", 0), 0u) << text.substr(0, 80);

    auto b = Open("b.db");
    std::istringstream in(text);
    // 500 faces per batch: subjects of 3 faces straddle batch boundaries.
    auto n = b->ImportFrom(in, {.batch = 500});
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    EXPECT_EQ(*n, 3000);
    EXPECT_EQ(b->Stats()->templates, 3000);
    EXPECT_EQ(b->Stats()->subjects, 1001);
    EXPECT_EQ(b->GetSubject("p7")->metadata, R"({"badge":17})");
    EXPECT_EQ(b->GetSubject("p8")->display_name, "Person 8");
    EXPECT_EQ(b->GetSubject("empty")->display_name, "No Faces");
    EXPECT_EQ(b->Identify(Probe(Sample(123, 9)))->subject_id, "p123");
    EXPECT_TRUE(b->CheckConsistency().ok());
    // The very same float values come back (shortest exact decimal form).
    EXPECT_EQ(Faces(ExportText(*b)), Faces(text));

    // Again: every subject exists.
    std::istringstream again(text);
    auto dup = b->ImportFrom(again, {.batch = 500});
    ASSERT_FALSE(dup.ok());
    EXPECT_EQ(dup.status().code(), StatusCode::kAlreadyExists);
    EXPECT_NE(dup.status().message().find("line 2"), std::string::npos) << dup.status().ToString();
    std::istringstream skip(text);
    EXPECT_EQ(*b->ImportFrom(skip, {.skip_existing = true, .batch = 500}), 0);
    EXPECT_EQ(b->Stats()->templates, 3000);
}

TEST_F(ExportTest, MalformedLineNamesItsLineAndOnlyEarlierBatchesStay) {
    auto a = Open("a.db");
    Fill(*a, 10, 1);
    std::istringstream src(ExportText(*a));
    std::string text, line;
    for (int n = 1; std::getline(src, line); ++n) {
        // Line 9 is p3's face: lines 1 header, then subject/face pairs for p0, p1, p2, p3...
        text += (n == 9 ? std::string(R"({"type":"face","subject_id":"p3","embedding":[1,"x"]})")
                        : line) +
                "\n";
    }
    auto b = Open("b.db");
    std::istringstream in(text);
    auto n = b->ImportFrom(in, {.batch = 3});
    ASSERT_FALSE(n.ok());
    EXPECT_EQ(n.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(n.status().message().find("line 9"), std::string::npos) << n.status().ToString();
    EXPECT_NE(n.status().message().find("embedding"), std::string::npos) << n.status().ToString();
    // The first batch (p0..p2, committed at line 7) stays; p3's batch was never committed.
    EXPECT_EQ(b->Stats()->templates, 3);
    EXPECT_EQ(b->Stats()->subjects, 3);
    EXPECT_FALSE(b->GetSubject("p3").ok());
    EXPECT_TRUE(b->CheckConsistency().ok());
}

TEST_F(ExportTest, StructuralErrorsNameTheirLine) {
    auto b = Open("b.db");
    const std::string header = R"({"format":"facegate-gallery","version":2,"model_id":"m"})";
    const std::string subject = R"({"type":"subject","id":"x"})";
    const std::vector<std::pair<std::string, std::string>> cases = {
        {R"({"type":"subject","id":"x"})", "line 1"},                          // no header
        {header + "\n" + header, "line 2"},                                    // two headers
        {header + "\n" + R"({"subject_id":"x","embedding":[1]})", "line 2"},  // no subject yet
        {header + "\n" + subject + "\n" + subject, "line 3"},                 // twice
        {header + "\n" + subject + "\n" + R"({"type":"nope"})", "line 3"},
        {header + "\n\n" + subject + "\n" + "{not json", "line 4"},
        {R"({"format":"facegate-gallery","version":99})", "version 99"},
    };
    for (const auto& [text, where] : cases) {
        std::istringstream in(text);
        auto n = b->ImportFrom(in, {});
        ASSERT_FALSE(n.ok()) << text;
        EXPECT_NE(n.status().message().find(where), std::string::npos)
            << text << " -> " << n.status().ToString();
    }
    EXPECT_EQ(b->Stats()->subjects, 0);
}

TEST_F(ExportTest, VersionOneDocumentIsStillRead) {
    auto a = Open("a.db");
    Fill(*a, 20, 2);
    auto doc = a->Export();
    ASSERT_TRUE(doc.ok());
    for (int indent : {-1, 2}) {  // one line, and pretty-printed over many
        auto b = Open("b" + std::to_string(indent) + ".db");
        std::istringstream in("\n" + doc->dump(indent) + "\n");
        auto n = b->ImportFrom(in, {.batch = 7});
        ASSERT_TRUE(n.ok()) << n.status().ToString();
        EXPECT_EQ(*n, 40);
        EXPECT_EQ(b->Identify(Probe(Sample(11, 9)))->subject_id, "p11");
    }
}

TEST(ExportFormat, ParseLineRejectsBadRecordsClearly) {
    EXPECT_TRUE(std::holds_alternative<std::monostate>(*ParseExportLine(" \t\r")));
    const std::vector<std::pair<std::string, std::string>> bad = {
        {"[1,2]", "not a JSON object"},
        {"{", "not valid JSON"},
        {R"({"subject_id":"a"})", "embedding"},
        {R"({"subject_id":"a","embedding":[]})", "embedding"},
        {R"({"subject_id":"a","embedding":[1,null]})", "embedding"},
        {R"({"embedding":[1]})", "subject_id"},
        {R"({"subject_id":7,"embedding":[1]})", "subject_id"},
        {R"({"type":"subject"})", "id"},
        {R"({"type":"subject","id":"a","metadata":[1]})", "metadata"},
        {R"({"type":"subject","id":"a","created_at":1.5})", "created_at"},
        {R"({"type":"subject","id":"a","created_at":18446744073709551615})", "created_at"},
        {R"({"format":"other"})", "not a facegate gallery export"},
        {R"({"format":"facegate-gallery","version":"2"})", "version"},
        {R"({"format":"facegate-gallery","version":2,"dim":-1})", "dim"},
    };
    for (const auto& [line, what] : bad) {
        auto r = ParseExportLine(line);
        ASSERT_FALSE(r.ok()) << line;
        EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << line;
        EXPECT_NE(r.status().message().find(what), std::string::npos)
            << line << " -> " << r.status().ToString();
    }
    auto face = ParseExportLine(R"({"subject_id":"a","embedding":[0.5,1e-3],"display_name":"A"})");
    ASSERT_TRUE(face.ok());
    EXPECT_EQ(std::get<ExportFace>(*face).embedding, (std::vector<float>{0.5f, 1e-3f}));
    EXPECT_EQ(std::get<ExportFace>(*face).display_name, "A");
}

TEST(ExportFormat, FormattedLinesParseBackToTheSameRecord) {
    ExportFace f{.subject_id = "s \"q\" \\ é", .embedding = {0.1f, -3.4028235e38f, 1e-45f},
                 .model_id = "m@1", .quality = 0.25f, .source = "a.jpg", .created_at = 17};
    auto text = FormatExportLine(f);
    ASSERT_TRUE(text.ok());
    auto back = ParseExportLine(*text);
    ASSERT_TRUE(back.ok()) << back.status().ToString() << " " << *text;
    const auto& g = std::get<ExportFace>(*back);
    EXPECT_EQ(g.subject_id, f.subject_id);
    EXPECT_EQ(g.embedding, f.embedding);
    EXPECT_EQ(g.quality, f.quality);
    EXPECT_EQ(g.created_at, 17);
    EXPECT_FALSE(FormatExportLine(ExportFace{.subject_id = "\xff", .embedding = {1}}).ok());
}

}  // namespace
}  // namespace fg::gallery
