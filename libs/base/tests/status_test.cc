// SPDX-License-Identifier: Apache-2.0
#include "fg/base/status.h"

#include <gtest/gtest.h>

namespace fg {
namespace {

Result<int> Half(int x) {
    if (x % 2 != 0) return InvalidArgument("odd");
    return x / 2;
}

Status Chain(int x, int* out) {
    FG_ASSIGN_OR_RETURN(int h, Half(x));
    FG_ASSIGN_OR_RETURN(int q, Half(h));
    *out = q;
    return Status::Ok();
}

TEST(Status, OkHasNoMessage) {
    Status s;
    EXPECT_TRUE(s.ok());
    EXPECT_EQ(s.code(), StatusCode::kOk);
    EXPECT_EQ(s.ToString(), "OK");
}

TEST(Status, ErrorCarriesCodeAndContext) {
    Status s = NotFound("model.onnx").WithContext("loading pack");
    EXPECT_FALSE(s.ok());
    EXPECT_EQ(s.code(), StatusCode::kNotFound);
    EXPECT_EQ(s.ToString(), "NOT_FOUND: loading pack: model.onnx");
}

// The access-control codes (HTTP 401 and 403; issue 14).
TEST(Status, AccessCodes) {
    EXPECT_EQ(Unauthenticated("invalid API key").ToString(), "UNAUTHENTICATED: invalid API key");
    EXPECT_EQ(PermissionDenied("needs enroll").code(), StatusCode::kPermissionDenied);
    EXPECT_EQ(StatusCodeName(StatusCode::kPermissionDenied), "PERMISSION_DENIED");
}

TEST(Result, PropagatesThroughMacros) {
    int out = 0;
    EXPECT_TRUE(Chain(8, &out).ok());
    EXPECT_EQ(out, 2);
    Status s = Chain(6, &out);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace fg
