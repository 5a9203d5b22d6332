// SPDX-License-Identifier: Apache-2.0
// The facegate binary end to end: output formats, exit codes and every bad-input case of
// issue #2 (missing, empty, truncated, non-image files; 1x1 and huge images; grey and 16-bit;
// no face; wrong or corrupt models; hash mismatches).
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "fg/base/paths.h"
#include "fg/testing/testing.h"

namespace fg {
namespace {

struct CmdResult {
    int code = -1;
    std::string out;
    std::string err;
};

/// Runs facegate with `args` (shell-quoted by the caller), capturing stdout and stderr.
CmdResult Facegate(const std::string& args, const testing::TmpDir& tmp) {
    const std::string err_file = (tmp / "stderr.txt").string();
    const std::string cmd = std::string(FG_FACEGATE_BIN) + " " + args + " 2>" + err_file;
    CmdResult r;
    FILE* p = popen(cmd.c_str(), "r");
    if (p == nullptr) return r;
    std::array<char, 4096> buf{};
    size_t n;
    while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
    const int status = pclose(p);
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    std::ifstream e(err_file);
    r.err.assign(std::istreambuf_iterator<char>(e), {});
    return r;
}

void WriteBytes(const std::filesystem::path& p, const std::string& bytes) {
    std::ofstream f(p, std::ios::binary);
    f << bytes;
}

std::string Q(const std::filesystem::path& p) { return "'" + p.string() + "'"; }

class Cli : public ::testing::Test {
  protected:
    void SetUp() override { FG_REQUIRE_PATH(ModelsDir() / "fr_detect.onnx"); }
    testing::TmpDir tmp_;
};

TEST_F(Cli, UsageErrorsExitTwo) {
    EXPECT_EQ(Facegate("", tmp_).code, 2);
    EXPECT_EQ(Facegate("detect", tmp_).code, 2);
    EXPECT_EQ(Facegate("compare only_one.jpg", tmp_).code, 2);
    EXPECT_EQ(Facegate("detect --score-threshold 7 x.jpg", tmp_).code, 2);
    EXPECT_EQ(Facegate("no-such-command", tmp_).code, 2);
}

TEST_F(Cli, DetectsAndDrawsADlibChip) {
    const auto chip = DlibExamplesDir() / "johns/John_Salley/000179_02159509.jpg";
    FG_REQUIRE_PATH(chip);
    const auto drawn = tmp_ / "out.png";
    CmdResult r = Facegate("detect --json --draw " + Q(drawn) + " " + Q(chip), tmp_);
    ASSERT_EQ(r.code, 0) << r.err;
    auto j = nlohmann::json::parse(r.out);
    ASSERT_EQ(j["images"].size(), 1u);
    ASSERT_EQ(j["images"][0]["faces"].size(), 1u);
    const auto& face = j["images"][0]["faces"][0];
    EXPECT_EQ(face["landmarks"].size(), 5u);
    EXPECT_GT(face["score"].get<double>(), 0.5);
    EXPECT_TRUE(face.contains("quality"));
    EXPECT_TRUE(std::filesystem::exists(drawn));
}

TEST_F(Cli, BadFilesGetClearErrors) {
    WriteBytes(tmp_ / "empty.jpg", "");
    WriteBytes(tmp_ / "text.jpg", "this is not an image\n");
    std::vector<uchar> jpg;
    cv::Mat img(200, 200, CV_8UC3, cv::Scalar(10, 200, 30));
    cv::imencode(".jpg", img, jpg);
    WriteBytes(tmp_ / "truncated.jpg", std::string(jpg.begin(), jpg.begin() + 100));
    std::filesystem::create_directory(tmp_ / "dir.jpg");
    struct Case {
        std::string file;
        std::string expect;
    };
    for (const Case& c : {Case{"missing.jpg", "NOT_FOUND"}, Case{"empty.jpg", "INVALID_ARGUMENT"},
                          Case{"text.jpg", "INVALID_ARGUMENT"}, Case{"truncated.jpg", "INVALID_ARGUMENT"},
                          Case{"dir.jpg", "INVALID_ARGUMENT"}}) {
        CmdResult r = Facegate("detect --json " + Q(tmp_ / c.file), tmp_);
        EXPECT_EQ(r.code, 1) << c.file;
        EXPECT_NE(r.err.find(c.expect), std::string::npos) << c.file << ": " << r.err;
        EXPECT_NE(r.err.find(c.file), std::string::npos) << "error names the file: " << r.err;
        // The JSON still reports the failure per image.
        auto j = nlohmann::json::parse(r.out, nullptr, false);
        ASSERT_FALSE(j.is_discarded()) << r.out;
        EXPECT_TRUE(j["images"][0].contains("error"));
    }
}

TEST_F(Cli, OddImagesGiveDefinedResults) {
    cv::imwrite((tmp_ / "1x1.png").string(), cv::Mat(1, 1, CV_8UC3, cv::Scalar::all(90)));
    cv::imwrite((tmp_ / "gray.png").string(), cv::Mat(300, 400, CV_8UC1, cv::Scalar::all(90)));
    cv::imwrite((tmp_ / "deep.png").string(), cv::Mat(300, 400, CV_16UC3, cv::Scalar::all(40000)));
    cv::imwrite((tmp_ / "rgba.png").string(), cv::Mat(300, 400, CV_8UC4, cv::Scalar::all(90)));
    for (const char* f : {"1x1.png", "gray.png", "deep.png", "rgba.png"}) {
        CmdResult r = Facegate(std::string("detect --json ") + Q(tmp_ / f), tmp_);
        EXPECT_EQ(r.code, 0) << f << ": " << r.err;
        auto j = nlohmann::json::parse(r.out);
        EXPECT_TRUE(j["images"][0]["faces"].empty()) << f;
    }
}

TEST_F(Cli, HugeImageIsRefusedOrHandled) {
    // 20000x20000: a 400-megapixel image, above the default 256 MP limit. It is refused from
    // its header with a clear error, without decoding.
    cv::Mat huge(20000, 20000, CV_8UC1, cv::Scalar::all(0));
    ASSERT_TRUE(cv::imwrite((tmp_ / "huge.png").string(), huge));
    huge.release();
    CmdResult r = Facegate("detect --json " + Q(tmp_ / "huge.png"), tmp_);
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("huge.png"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("too large"), std::string::npos) << r.err;
}

TEST_F(Cli, GrayscaleFaceStillDetected) {
    const auto chip = DlibExamplesDir() / "johns/John_Salley/000179_02159509.jpg";
    FG_REQUIRE_PATH(chip);
    cv::Mat g = cv::imread(chip.string(), cv::IMREAD_GRAYSCALE);
    cv::imwrite((tmp_ / "g.png").string(), g);
    CmdResult r = Facegate("detect --json " + Q(tmp_ / "g.png"), tmp_);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(nlohmann::json::parse(r.out)["images"][0]["faces"].size(), 1u);
}

TEST_F(Cli, CompareSeparatesPeopleAndNeedsFaces) {
    const auto root = DlibExamplesDir() / "johns";
    FG_REQUIRE_PATH(root);
    const auto a1 = root / "John_Salley/000179_02159509.jpg";
    const auto a2 = root / "John_Salley/000183_02159543.jpg";
    const auto b1 = root / "John_Savage/000264_01099001.jpg";
    CmdResult same = Facegate("compare --json " + Q(a1) + " " + Q(a2), tmp_);
    ASSERT_EQ(same.code, 0) << same.err;
    EXPECT_TRUE(nlohmann::json::parse(same.out)["same"].get<bool>());
    CmdResult diff = Facegate("compare --json " + Q(a1) + " " + Q(b1), tmp_);
    ASSERT_EQ(diff.code, 0) << diff.err;
    auto j = nlohmann::json::parse(diff.out);
    EXPECT_FALSE(j["same"].get<bool>());
    EXPECT_TRUE(j.contains("threshold"));
    cv::imwrite((tmp_ / "blank.png").string(), cv::Mat(300, 300, CV_8UC3, cv::Scalar::all(0)));
    CmdResult noface = Facegate("compare " + Q(a1) + " " + Q(tmp_ / "blank.png"), tmp_);
    EXPECT_EQ(noface.code, 1);
    EXPECT_NE(noface.err.find("no face"), std::string::npos) << noface.err;
}

TEST_F(Cli, EmbedPrintsUnitVectorsWithModelId) {
    const auto chip = DlibExamplesDir() / "johns/John_Salley/000179_02159509.jpg";
    FG_REQUIRE_PATH(chip);
    CmdResult r = Facegate("embed " + Q(chip), tmp_);
    ASSERT_EQ(r.code, 0) << r.err;
    auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["model_id"].get<std::string>().rfind("fr_feature@", 0), 0u);
    auto v = j["images"][0]["faces"][0]["embedding"].get<std::vector<float>>();
    ASSERT_EQ(v.size(), 512u);
    double n = 0;
    for (float x : v) n += x * x;
    EXPECT_NEAR(n, 1.0, 1e-4);
}

TEST_F(Cli, WrongOrCorruptModelsGetClearErrors) {
    const auto chip = DlibExamplesDir() / "johns/John_Salley/000179_02159509.jpg";
    FG_REQUIRE_PATH(chip);
    // A pack whose detector is a truncated copy of fr_detect.onnx, with and without its hash.
    std::ifstream in(ModelsDir() / "fr_detect.onnx", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    WriteBytes(tmp_ / "cut.onnx", bytes.substr(0, bytes.size() / 2));
    WriteBytes(tmp_ / "junk.onnx", "definitely not a protobuf");
    std::ifstream pin(std::string(FG_PACKS_DIR) + "/default.json");
    nlohmann::json pack = nlohmann::json::parse(pin);
    struct Case {
        std::string file;
        bool keep_hash;
        std::string expect;
    };
    for (const Case& c : {Case{"cut.onnx", true, "sha256"}, Case{"cut.onnx", false, "cut.onnx"},
                          Case{"junk.onnx", false, "junk.onnx"}, Case{"absent.onnx", false, "absent.onnx"}}) {
        nlohmann::json p = pack;
        p["models"][0]["path"] = (tmp_ / c.file).string();
        if (!c.keep_hash) p["models"][0].erase("sha256");
        WriteBytes(tmp_ / "pack.json", p.dump());
        CmdResult r = Facegate("detect --pack " + Q(tmp_ / "pack.json") + " " + Q(chip), tmp_);
        EXPECT_EQ(r.code, 1) << c.file;
        EXPECT_NE(r.err.find(c.expect), std::string::npos) << c.file << ": " << r.err;
    }
    CmdResult r = Facegate("detect --pack no_such_pack " + Q(chip), tmp_);
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("no_such_pack"), std::string::npos) << r.err;
    WriteBytes(tmp_ / "broken.json", "{ not json");
    r = Facegate("detect --pack " + Q(tmp_ / "broken.json") + " " + Q(chip), tmp_);
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("broken.json"), std::string::npos) << r.err;
}

TEST_F(Cli, ModelsVerifyReportsHashes) {
    CmdResult r = Facegate("models verify default --json", tmp_);
    ASSERT_EQ(r.code, 0) << r.err;
    auto j = nlohmann::json::parse(r.out);
    EXPECT_TRUE(j["packs"][0]["ok"].get<bool>());
    // A pack with a wrong hash fails verification.
    std::ifstream pin(std::string(FG_PACKS_DIR) + "/default.json");
    nlohmann::json pack = nlohmann::json::parse(pin);
    pack["models"][0]["sha256"] = std::string(64, '0');
    WriteBytes(tmp_ / "pack.json", pack.dump());
    r = Facegate("models verify " + Q(tmp_ / "pack.json"), tmp_);
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.out.find("MISMATCH"), std::string::npos) << r.out;
    r = Facegate("models list", tmp_);
    EXPECT_EQ(r.code, 0);
    EXPECT_NE(r.out.find("yunet_s"), std::string::npos);
}

}  // namespace
}  // namespace fg
