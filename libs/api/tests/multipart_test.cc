// SPDX-License-Identifier: Apache-2.0
#include "fg/api/multipart.h"

#include <gtest/gtest.h>

namespace fg::api {
namespace {

std::string Body(const std::string& b) {
    return "--" + b + "\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.jpg\"\r\n"
           "Content-Type: image/jpeg\r\n\r\nJPEGDATA\r\n--" + b +
           "\r\nContent-Disposition: form-data; name=\"subject_id\"\r\n\r\nalice\r\n--" + b + "--\r\n";
}

TEST(MultipartTest, Boundary) {
    EXPECT_EQ(*MultipartBoundary("multipart/form-data; boundary=abc"), "abc");
    EXPECT_EQ(*MultipartBoundary("Multipart/Form-Data;boundary=\"a b;c\""), "a b;c");
    EXPECT_FALSE(MultipartBoundary("multipart/form-data").ok());
    EXPECT_FALSE(MultipartBoundary("multipart/form-data; boundary=").ok());
    EXPECT_FALSE(MultipartBoundary("multipart/form-data; boundary=" + std::string(71, 'x')).ok());
    EXPECT_FALSE(MultipartBoundary("application/json; boundary=abc").ok());
}

TEST(MultipartTest, Parses) {
    auto parts = ParseMultipart(Body("XyZ"), "XyZ");
    ASSERT_TRUE(parts.ok()) << parts.status().message();
    ASSERT_EQ(parts->size(), 2u);
    EXPECT_EQ((*parts)[0].name, "image");
    EXPECT_EQ((*parts)[0].filename, "a.jpg");
    EXPECT_EQ((*parts)[0].content_type, "image/jpeg");
    EXPECT_EQ((*parts)[0].body, "JPEGDATA");
    EXPECT_EQ((*parts)[1].name, "subject_id");
    EXPECT_EQ((*parts)[1].body, "alice");
    // A preamble before the first delimiter is ignored.
    EXPECT_TRUE(ParseMultipart("preamble\r\n" + Body("XyZ"), "XyZ").ok());
}

TEST(MultipartTest, RefusesMalformed) {
    const std::string full = Body("XyZ");
    // Every truncation of a valid body is an error, never a crash.
    for (std::size_t n = 0; n + 4 < full.size(); ++n) {
        EXPECT_FALSE(ParseMultipart(full.substr(0, n), "XyZ").ok()) << n;
    }
    EXPECT_FALSE(ParseMultipart(full, "other").ok());
    EXPECT_FALSE(ParseMultipart("--XyZ--\r\n", "XyZ").ok());  // no parts
    EXPECT_FALSE(ParseMultipart("--XyZ\r\nX-Foo: bar\r\n\r\nx\r\n--XyZ--", "XyZ").ok());  // no name
    EXPECT_FALSE(ParseMultipart("--XyZ\r\nbroken header\r\n\r\nx\r\n--XyZ--", "XyZ").ok());
    std::string many;
    for (int i = 0; i < 40; ++i) many += "--B\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\nx\r\n";
    many += "--B--";
    EXPECT_FALSE(ParseMultipart(many, "B").ok());
    EXPECT_FALSE(ParseMultipart("--B\r\nContent-Disposition: form-data; name=\"" + std::string(5000, 'n') +
                                    "\"\r\n\r\nx\r\n--B--",
                                "B")
                     .ok());
}

}  // namespace
}  // namespace fg::api
