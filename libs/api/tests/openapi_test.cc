// SPDX-License-Identifier: Apache-2.0
// api/openapi.json and the Router agree: every route in the file exists and vice versa, and the
// embedded copy is the file.
#include <fstream>
#include <set>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "fg/api/api.h"

namespace fg::api {
namespace {

TEST(OpenApiTest, EveryRouteIsDocumentedAndViceVersa) {
    std::ifstream in(FG_OPENAPI_JSON);
    ASSERT_TRUE(in) << FG_OPENAPI_JSON;
    std::stringstream text;
    text << in.rdbuf();
    EXPECT_EQ(text.str(), OpenApiDocument()) << "rebuild: the embedded copy is stale";
    const auto doc = nlohmann::json::parse(text.str());
    EXPECT_EQ(doc["openapi"], "3.0.3");
    std::set<std::pair<std::string, std::string>> documented;
    for (auto& [path, item] : doc["paths"].items()) {
        for (auto& [method, op] : item.items()) {
            if (method == "parameters") continue;
            std::string m = method;
            for (char& c : m) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
            documented.emplace(m, path);
            // Routes that need a key say which scope.
            if (!op["security"].empty()) {
                EXPECT_TRUE(op.contains("x-required-scope")) << m << " " << path;
            }
        }
    }
    ApiContext ctx;
    ctx.metrics = [] { return std::string(); };  // serve always sets it
    server::Router router;
    AddRoutes(router, ctx);
    std::set<std::pair<std::string, std::string>> routed;
    for (const auto& [m, p] : router.Routes()) {
        routed.emplace(m, p);
        EXPECT_TRUE(documented.count({m, p})) << "not in api/openapi.json: " << m << " " << p;
    }
    for (const auto& [m, p] : documented) {
        EXPECT_TRUE(routed.count({m, p})) << "documented but not routed: " << m << " " << p;
        // The scope documented is the scope enforced.
        const auto match = router.Find(m, p);
        ASSERT_NE(match.options, nullptr) << m << " " << p;
        std::string method = m;
        for (char& c : method) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        const auto& op = doc["paths"][p][method];
        EXPECT_EQ(op.value("x-required-scope", ""), match.options->scope) << m << " " << p;
    }
}

}  // namespace
}  // namespace fg::api
