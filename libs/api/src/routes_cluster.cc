// SPDX-License-Identifier: Apache-2.0
// GET /v1/cluster (docs/api.md "Cluster"): the scale-out cluster's last gathered status, as
// serve's status poller keeps it (apps/facegate/cmd_serve.cc). The request never touches the bus:
// it answers from memory, so it stays as cheap as /readyz.
#include "http_util.h"
#include "routes.h"

namespace fg::api {

using server::Request;
using server::Response;

void AddClusterRoutes(server::Router& router, ApiContext& ctx) {
    router.Add("GET", "/v1/cluster", {.scope = "read"}, Guard([&ctx](Request&) {
                   if (!ctx.cluster_snapshot)
                       Throw(409, "no_cluster",
                             "the service gathers no cluster status (a `cluster` section with status_interval_s > 0)");
                   nlohmann::json j = ctx.cluster_snapshot();
                   if (j.is_null()) Throw(503, "cluster_status_pending", "the cluster's status is not gathered yet");
                   return Response::Json(200, j);
               }));
}

}  // namespace fg::api
