// SPDX-License-Identifier: Apache-2.0
#include "assignment.h"

#include <algorithm>
#include <limits>

namespace fg::track::internal {

namespace {

// Exact solver on one block: the Hungarian algorithm on the padded square matrix.
std::vector<std::pair<int, int>> SolveBlock(
    const std::vector<float>& cost, int rows, int cols, float cost_limit) {
    std::vector<std::pair<int, int>> out;
    // Finite "forbidden" cost: large enough never to be chosen over a dummy, small enough that
    // sums of potentials stay exact in double.
    constexpr double kForbidden = 1e9;
    const int n = rows + cols;
    const double half = static_cast<double>(cost_limit) / 2;
    std::vector<double> a(static_cast<size_t>(n) * n, kForbidden);
    for (int i = 0; i < rows; ++i) {
        for (int j = 0; j < cols; ++j) {
            const double c = cost[static_cast<size_t>(i) * cols + j];
            a[static_cast<size_t>(i) * n + j] = c > cost_limit ? kForbidden : c;
        }
        a[static_cast<size_t>(i) * n + cols + i] = half;  // row i unmatched via its dummy column
    }
    for (int j = 0; j < cols; ++j) {
        a[static_cast<size_t>(rows + j) * n + j] = half;  // column j unmatched via its dummy row
        for (int k = cols; k < n; ++k) {
            a[static_cast<size_t>(rows + j) * n + k] = 0;  // dummy with dummy
        }
    }

    // 1-based: u/v potentials, p[j] = row assigned to column j, way[j] = previous column on the
    // shortest augmenting path.
    const double inf = std::numeric_limits<double>::infinity();
    std::vector<double> u(n + 1, 0), v(n + 1, 0), minv(n + 1);
    std::vector<int> p(n + 1, 0), way(n + 1, 0);
    std::vector<char> used(n + 1);
    for (int i = 1; i <= n; ++i) {
        p[0] = i;
        int j0 = 0;
        std::fill(minv.begin(), minv.end(), inf);
        std::fill(used.begin(), used.end(), 0);
        do {
            used[j0] = 1;
            const int i0 = p[j0];
            const double* row = &a[static_cast<size_t>(i0 - 1) * n];
            double delta = inf;
            int j1 = 0;
            for (int j = 1; j <= n; ++j) {
                if (used[j]) {
                    continue;
                }
                const double cur = row[j - 1] - u[i0] - v[j];
                if (cur < minv[j]) {
                    minv[j] = cur;
                    way[j] = j0;
                }
                if (minv[j] < delta) {
                    delta = minv[j];
                    j1 = j;
                }
            }
            for (int j = 0; j <= n; ++j) {
                if (used[j]) {
                    u[p[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
        } while (p[j0] != 0);
        do {
            const int j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
        } while (j0 != 0);
    }
    for (int j = 1; j <= cols; ++j) {
        const int i = p[j] - 1;
        if (i >= 0 && i < rows && cost[static_cast<size_t>(i) * cols + (j - 1)] <= cost_limit) {
            out.emplace_back(i, j - 1);
        }
    }
    return out;
}

int FindRoot(std::vector<int>& parent, int x) {
    while (parent[x] != x) {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    return x;
}

}  // namespace

std::vector<std::pair<int, int>> MinCostAssignment(
    const std::vector<float>& cost, int rows, int cols, float cost_limit) {
    std::vector<std::pair<int, int>> out;
    if (rows == 0 || cols == 0) {
        return out;
    }
    // The problem splits exactly into connected components of allowed pairs (faces far apart
    // never compete), so solve each small block instead of one O((rows + cols)^3) problem.
    std::vector<int> parent(rows + cols);
    for (int i = 0; i < rows + cols; ++i) {
        parent[i] = i;
    }
    for (int r = 0; r < rows; ++r) {
        for (int c = 0; c < cols; ++c) {
            if (cost[static_cast<size_t>(r) * cols + c] <= cost_limit) {
                parent[FindRoot(parent, r)] = FindRoot(parent, rows + c);
            }
        }
    }
    std::vector<std::vector<int>> block_rows(rows + cols), block_cols(rows + cols);
    for (int r = 0; r < rows; ++r) {
        block_rows[FindRoot(parent, r)].push_back(r);
    }
    for (int c = 0; c < cols; ++c) {
        block_cols[FindRoot(parent, rows + c)].push_back(c);
    }
    for (int b = 0; b < rows + cols; ++b) {
        const auto& br = block_rows[b];
        const auto& bc = block_cols[b];
        if (br.empty() || bc.empty()) {
            continue;  // a lone row or column: nothing it may pair with
        }
        if (br.size() == 1 && bc.size() == 1) {
            out.emplace_back(br[0], bc[0]);  // connected means allowed
            continue;
        }
        std::vector<float> sub(br.size() * bc.size());
        for (size_t i = 0; i < br.size(); ++i) {
            for (size_t j = 0; j < bc.size(); ++j) {
                sub[i * bc.size() + j] = cost[static_cast<size_t>(br[i]) * cols + bc[j]];
            }
        }
        for (auto [i, j] : SolveBlock(
                 sub, static_cast<int>(br.size()), static_cast<int>(bc.size()), cost_limit)) {
            out.emplace_back(br[i], bc[j]);
        }
    }
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace fg::track::internal
