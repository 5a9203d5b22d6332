// SPDX-License-Identifier: Apache-2.0
#include "fg/image/geometry.h"

#include <cmath>
#include <limits>
#include <numbers>
#include <random>
#include <vector>

#include <gtest/gtest.h>

namespace fg {
namespace {

// ---- IoU -------------------------------------------------------------------------------

TEST(IoUTest, IdenticalBoxesGiveOne) {
    EXPECT_FLOAT_EQ(IoU({1, 2, 10, 20}, {1, 2, 10, 20}), 1.f);
}

TEST(IoUTest, DisjointAndTouchingBoxesGiveZero) {
    EXPECT_EQ(IoU({0, 0, 10, 10}, {20, 20, 5, 5}), 0.f);
    EXPECT_EQ(IoU({0, 0, 10, 10}, {10, 0, 10, 10}), 0.f);  // shares an edge only
}

TEST(IoUTest, PartialOverlap) {
    // Overlap 5x10 = 50, union 100 + 100 - 50 = 150.
    EXPECT_NEAR(IoU({0, 0, 10, 10}, {5, 0, 10, 10}), 50.f / 150.f, 1e-6);
    // Overlap 5x5 = 25, union 175.
    EXPECT_NEAR(IoU({0, 0, 10, 10}, {5, 5, 10, 10}), 25.f / 175.f, 1e-6);
}

TEST(IoUTest, ContainedBox) {
    EXPECT_NEAR(IoU({0, 0, 10, 10}, {2, 2, 5, 5}), 25.f / 100.f, 1e-6);
}

TEST(IoUTest, IsSymmetric) {
    const Rect2f a{3, 4, 7, 9}, b{5, 1, 6, 8};
    EXPECT_FLOAT_EQ(IoU(a, b), IoU(b, a));
}

TEST(IoUTest, EmptyOrInvalidBoxesGiveZero) {
    EXPECT_EQ(IoU({0, 0, 0, 10}, {0, 0, 10, 10}), 0.f);
    EXPECT_EQ(IoU({0, 0, -5, 10}, {-5, 0, 10, 10}), 0.f);
    EXPECT_EQ(IoU({0, 0, 0, 0}, {0, 0, 0, 0}), 0.f);
    const float nan = std::numeric_limits<float>::quiet_NaN();
    EXPECT_EQ(IoU({nan, 0, 10, 10}, {0, 0, 10, 10}), 0.f);
}

// ---- NMS -------------------------------------------------------------------------------

// A and B overlap with IoU 90/110 = 0.818; C is far away.
const std::vector<Rect2f> kBoxes = {{0, 0, 10, 10}, {1, 0, 10, 10}, {50, 50, 10, 10}};
const std::vector<float> kScores = {0.9f, 0.8f, 0.7f};

TEST(NmsTest, SuppressesOverlappingBoxes) {
    EXPECT_EQ(Nms(kBoxes, kScores, 0.5f), (std::vector<int>{0, 2}));
}

TEST(NmsTest, IouThresholdAboveOverlapKeepsAll) {
    EXPECT_EQ(Nms(kBoxes, kScores, 0.9f), (std::vector<int>{0, 1, 2}));
}

TEST(NmsTest, ScoreThresholdDropsFirst) {
    EXPECT_EQ(Nms(kBoxes, kScores, 0.9f, 0.75f), (std::vector<int>{0, 1}));
    EXPECT_EQ(Nms(kBoxes, kScores, 0.9f, 0.8f), (std::vector<int>{0, 1}));  // >= is kept
    EXPECT_TRUE(Nms(kBoxes, kScores, 0.5f, 0.95f).empty());
}

TEST(NmsTest, MaxKeep) {
    EXPECT_EQ(Nms(kBoxes, kScores, 0.9f, 0.f, 1), (std::vector<int>{0}));
    EXPECT_EQ(Nms(kBoxes, kScores, 0.9f, 0.f, 2), (std::vector<int>{0, 1}));
    EXPECT_EQ(Nms(kBoxes, kScores, 0.5f, 0.f, 2), (std::vector<int>{0, 2}));  // counts kept only
    EXPECT_EQ(Nms(kBoxes, kScores, 0.9f, 0.f, -1), (std::vector<int>{0, 1, 2}));
}

TEST(NmsTest, EmptyInput) {
    EXPECT_TRUE(Nms({}, {}, 0.5f).empty());
}

TEST(NmsTest, OutputIsSortedByScore) {
    const std::vector<Rect2f> boxes = {{0, 0, 5, 5}, {10, 0, 5, 5}, {20, 0, 5, 5}};
    const std::vector<float> scores = {0.2f, 0.9f, 0.5f};
    EXPECT_EQ(Nms(boxes, scores, 0.5f), (std::vector<int>{1, 2, 0}));
}

TEST(NmsTest, EqualScoresAreStable) {
    const std::vector<Rect2f> boxes = {{0, 0, 5, 5}, {10, 0, 5, 5}, {0, 0, 5, 5}, {20, 0, 5, 5}};
    const std::vector<float> scores = {0.5f, 0.5f, 0.5f, 0.5f};
    // Box 2 duplicates box 0 and loses to it because it comes later.
    EXPECT_EQ(Nms(boxes, scores, 0.5f), (std::vector<int>{0, 1, 3}));
}

TEST(NmsTest, SuppressedBoxDoesNotSuppressOthers) {
    // A overlaps B, B overlaps C, A does not overlap C: greedy keeps A and C.
    const std::vector<Rect2f> boxes = {{0, 0, 10, 10}, {4, 0, 10, 10}, {8, 0, 10, 10}};
    const std::vector<float> scores = {0.9f, 0.8f, 0.7f};
    EXPECT_EQ(Nms(boxes, scores, 0.3f), (std::vector<int>{0, 2}));
}

TEST(NmsTest, NanScoresAreDropped) {
    const std::vector<Rect2f> boxes = {{0, 0, 5, 5}, {10, 0, 5, 5}};
    const std::vector<float> scores = {std::numeric_limits<float>::quiet_NaN(), 0.4f};
    EXPECT_EQ(Nms(boxes, scores, 0.5f), (std::vector<int>{1}));
}

// ---- Affine2x3 -------------------------------------------------------------------------

TEST(Affine2x3Test, ScaleOfRotationAndReflection) {
    Affine2x3 a;
    a.m = {0, -2, 10, 2, 0, 20};
    EXPECT_DOUBLE_EQ(a.Scale(), 2.0);
    a.m = {-3, 0, 0, 0, 3, 0};  // reflection
    EXPECT_DOUBLE_EQ(a.Scale(), 3.0);
}

TEST(Affine2x3Test, InverseRoundTrip) {
    Affine2x3 a;
    a.m = {1.2, -0.7, 15.5, 0.4, 0.9, -8.25};
    const Affine2x3 inv = a.Inverse();
    for (Point2f p : {Point2f{0, 0}, Point2f{3.5f, -2}, Point2f{100, 250}}) {
        const Point2f q = inv.Apply(a.Apply(p));
        EXPECT_NEAR(q.x, p.x, 1e-3);
        EXPECT_NEAR(q.y, p.y, 1e-3);
    }
    const Affine2x3 back = inv.Inverse();
    for (int i = 0; i < 6; ++i) EXPECT_NEAR(back.m[i], a.m[i], 1e-12) << i;
}

TEST(Affine2x3Test, InverseOfHandComputedSimilarity) {
    // (x, y) -> (-2y + 10, 2x + 20); inverse: x = (y' - 20) / 2, y = (10 - x') / 2.
    Affine2x3 a;
    a.m = {0, -2, 10, 2, 0, 20};
    const Affine2x3 inv = a.Inverse();
    const std::array<double, 6> expected = {0, 0.5, -10, -0.5, 0, 5};
    for (int i = 0; i < 6; ++i) EXPECT_NEAR(inv.m[i], expected[i], 1e-12) << i;
}

TEST(Affine2x3Test, SingularInverseIsIdentity) {
    Affine2x3 a;
    a.m = {1, 2, 3, 2, 4, 5};  // det = 0
    EXPECT_EQ(a.Inverse().m, (Affine2x3{}.m));
}

// ---- EstimateSimilarity ------------------------------------------------------------------

void ExpectMatrixNear(const Affine2x3& a, const std::array<double, 6>& e, double tol) {
    for (int i = 0; i < 6; ++i) EXPECT_NEAR(a.m[i], e[i], tol) << "entry " << i;
}

TEST(EstimateSimilarityTest, Rotation90Scale2Shift) {
    // Hand-computed: rotate by +90 degrees ((x, y) -> (-y, x)), scale 2, shift (10, 20):
    // [0 -2 10; 2 0 20].
    const std::vector<Point2f> src = {{0, 0}, {1, 0}, {0, 1}, {3, 2}};
    std::vector<Point2f> dst;
    for (auto p : src) dst.push_back({-2 * p.y + 10, 2 * p.x + 20});
    ASSERT_EQ(dst[1].x, 10.f);
    ASSERT_EQ(dst[1].y, 22.f);
    Affine2x3 a;
    ASSERT_TRUE(EstimateSimilarity(src, dst, a));
    ExpectMatrixNear(a, {0, -2, 10, 2, 0, 20}, 1e-9);
    EXPECT_NEAR(a.Scale(), 2.0, 1e-9);
}

TEST(EstimateSimilarityTest, TwoPointsSuffice) {
    const std::vector<Point2f> src = {{0, 0}, {1, 0}};
    const std::vector<Point2f> dst = {{10, 20}, {10, 22}};
    Affine2x3 a;
    ASSERT_TRUE(EstimateSimilarity(src, dst, a));
    ExpectMatrixNear(a, {0, -2, 10, 2, 0, 20}, 1e-9);
}

TEST(EstimateSimilarityTest, Identity) {
    const std::vector<Point2f> pts = {{38.3f, 51.7f}, {73.5f, 51.5f}, {56.0f, 71.7f}};
    Affine2x3 a;
    ASSERT_TRUE(EstimateSimilarity(pts, pts, a));
    ExpectMatrixNear(a, {1, 0, 0, 0, 1, 0}, 1e-9);
}

TEST(EstimateSimilarityTest, PureTranslation) {
    const std::vector<Point2f> src = {{1, 1}, {5, 2}, {3, 7}};
    std::vector<Point2f> dst;
    for (auto p : src) dst.push_back({p.x - 4.5f, p.y + 12.25f});
    Affine2x3 a;
    ASSERT_TRUE(EstimateSimilarity(src, dst, a));
    ExpectMatrixNear(a, {1, 0, -4.5, 0, 1, 12.25}, 1e-9);
}

// Independent reference: the 2D closed form of the rotation-only least-squares problem.
// With centred points, a = sum(s . d), b = sum(s x d); theta = atan2(b, a),
// c = sqrt(a^2 + b^2) / sum |s|^2, t = mu_d - c R mu_s.
std::array<double, 6> ClosedFormSimilarity(const std::vector<Point2f>& src,
                                           const std::vector<Point2f>& dst) {
    const double n = static_cast<double>(src.size());
    double msx = 0, msy = 0, mdx = 0, mdy = 0;
    for (std::size_t i = 0; i < src.size(); ++i) {
        msx += src[i].x;
        msy += src[i].y;
        mdx += dst[i].x;
        mdy += dst[i].y;
    }
    msx /= n, msy /= n, mdx /= n, mdy /= n;
    double a = 0, b = 0, ss = 0;
    for (std::size_t i = 0; i < src.size(); ++i) {
        const double sx = src[i].x - msx, sy = src[i].y - msy;
        const double dx = dst[i].x - mdx, dy = dst[i].y - mdy;
        a += sx * dx + sy * dy;
        b += sx * dy - sy * dx;
        ss += sx * sx + sy * sy;
    }
    const double r = std::hypot(a, b);
    const double c = r / ss, cs = a / r, sn = b / r;
    return {c * cs, -c * sn, mdx - c * (cs * msx - sn * msy),
            c * sn, c * cs,  mdy - c * (sn * msx + cs * msy)};
}

double Cost(const Affine2x3& a, const std::vector<Point2f>& src, const std::vector<Point2f>& dst) {
    double cost = 0;
    for (std::size_t i = 0; i < src.size(); ++i) {
        const double x = a.m[0] * src[i].x + a.m[1] * src[i].y + a.m[2] - dst[i].x;
        const double y = a.m[3] * src[i].x + a.m[4] * src[i].y + a.m[5] - dst[i].y;
        cost += x * x + y * y;
    }
    return cost;
}

TEST(EstimateSimilarityTest, NoisyFivePointsMatchClosedForm) {
    // Landmark-like points, transformed by 25 degrees, scale 1.3, shift, then jittered.
    const std::vector<Point2f> src = {
        {38.29f, 51.70f}, {73.53f, 51.50f}, {56.03f, 71.74f}, {41.55f, 92.37f}, {70.73f, 92.20f}};
    const std::vector<Point2f> noise = {
        {0.8f, -1.1f}, {-0.6f, 0.4f}, {1.3f, 0.9f}, {-0.2f, -1.4f}, {0.5f, 0.7f}};
    const double th = 25.0 * std::numbers::pi / 180.0, s = 1.3;
    std::vector<Point2f> dst;
    for (std::size_t i = 0; i < src.size(); ++i) {
        const double x = s * (std::cos(th) * src[i].x - std::sin(th) * src[i].y) + 7;
        const double y = s * (std::sin(th) * src[i].x + std::cos(th) * src[i].y) - 3;
        dst.push_back({static_cast<float>(x) + noise[i].x, static_cast<float>(y) + noise[i].y});
    }
    Affine2x3 a;
    ASSERT_TRUE(EstimateSimilarity(src, dst, a));
    ExpectMatrixNear(a, ClosedFormSimilarity(src, dst), 1e-7);
    // Roughly the generating transform, and no similarity nearby fits better.
    EXPECT_NEAR(a.Scale(), s, 0.02);
    EXPECT_NEAR(std::atan2(a.m[3], a.m[0]), th, 0.02);
    const double best = Cost(a, src, dst);
    for (int i : {0, 1, 2}) {
        for (double eps : {-1e-3, 1e-3}) {
            Affine2x3 b = a;
            if (i == 0) {  // perturb scale
                for (int k : {0, 1, 3, 4}) b.m[k] *= 1 + eps;
            } else {       // perturb translation
                b.m[i == 1 ? 2 : 5] += eps * 10;
            }
            EXPECT_GT(Cost(b, src, dst), best);
        }
    }
}

TEST(EstimateSimilarityTest, ReflectedPointsGiveProperRotation) {
    // dst is a mirror image of src: the best similarity must still be a rotation (det > 0),
    // as Umeyama's sign correction guarantees, and equal the rotation-only closed form.
    const std::vector<Point2f> src = {{0, 0}, {4, 0}, {0, 2}, {1, 3}, {5, 1}};
    std::vector<Point2f> dst;
    for (auto p : src) dst.push_back({-p.x, p.y});
    Affine2x3 a;
    ASSERT_TRUE(EstimateSimilarity(src, dst, a));
    EXPECT_GT(a.m[0] * a.m[4] - a.m[1] * a.m[3], 0);
    EXPECT_NEAR(a.m[0], a.m[4], 1e-9);
    EXPECT_NEAR(a.m[1], -a.m[3], 1e-9);
    ExpectMatrixNear(a, ClosedFormSimilarity(src, dst), 1e-7);
}

TEST(EstimateSimilarityTest, CollinearPoints) {
    const std::vector<Point2f> src = {{0, 0}, {1, 1}, {2, 2}};
    const std::vector<Point2f> dst = {{5, 5}, {5, 7}, {5, 9}};
    Affine2x3 a;
    ASSERT_TRUE(EstimateSimilarity(src, dst, a));
    for (std::size_t i = 0; i < src.size(); ++i) {
        EXPECT_NEAR(a.Apply(src[i]).x, dst[i].x, 1e-4);
        EXPECT_NEAR(a.Apply(src[i]).y, dst[i].y, 1e-4);
    }
}

TEST(EstimateSimilarityTest, RandomExactTransformsAreRecovered) {
    std::mt19937 rng(7);
    std::uniform_real_distribution<double> u(-1, 1);
    for (int trial = 0; trial < 50; ++trial) {
        const double th = u(rng) * std::numbers::pi, s = 0.2 + 3 * (u(rng) + 1), tx = 100 * u(rng),
                     ty = 100 * u(rng);
        std::vector<Point2f> src, dst;
        for (int i = 0; i < 5; ++i) {
            const Point2f p{static_cast<float>(100 * u(rng)), static_cast<float>(100 * u(rng))};
            src.push_back(p);
            dst.push_back({static_cast<float>(s * (std::cos(th) * p.x - std::sin(th) * p.y) + tx),
                           static_cast<float>(s * (std::sin(th) * p.x + std::cos(th) * p.y) + ty)});
        }
        Affine2x3 a;
        ASSERT_TRUE(EstimateSimilarity(src, dst, a));
        ExpectMatrixNear(a,
                         {s * std::cos(th), -s * std::sin(th), tx, s * std::sin(th),
                          s * std::cos(th), ty},
                         1e-3);
    }
}

TEST(EstimateSimilarityTest, DegenerateInputLeavesOutputUnchanged) {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const float inf = std::numeric_limits<float>::infinity();
    const std::vector<Point2f> three = {{0, 0}, {1, 0}, {0, 1}};
    struct Case {
        const char* name;
        std::vector<Point2f> src, dst;
    };
    const std::vector<Case> cases = {
        {"empty", {}, {}},
        {"one point", {{1, 2}}, {{3, 4}}},
        {"size mismatch", three, {{0, 0}, {1, 0}}},
        {"coincident src", {{5, 5}, {5, 5}, {5, 5}}, three},
        {"coincident dst", three, {{2, 2}, {2, 2}, {2, 2}}},
        {"nan", {{0, 0}, {1, nan}, {0, 1}}, three},
        {"inf", three, {{0, 0}, {inf, 0}, {0, 1}}},
    };
    for (const Case& c : cases) {
        Affine2x3 a;
        a.m = {9, 9, 9, 9, 9, 9};
        EXPECT_FALSE(EstimateSimilarity(c.src, c.dst, a)) << c.name;
        EXPECT_EQ(a.m, (std::array<double, 6>{9, 9, 9, 9, 9, 9})) << c.name;
    }
}

}  // namespace
}  // namespace fg
