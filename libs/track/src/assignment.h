// SPDX-License-Identifier: Apache-2.0
// Optimal one-to-one assignment with a cost limit (private to fg::track).
#pragma once

#include <utility>
#include <vector>

namespace fg::track::internal {

/// Pairs (row, col) minimising the total cost, where matching (r, c) costs cost[r * cols + c] and
/// leaving a row or a column unmatched costs cost_limit / 2 each. So a pair is only made when it
/// beats leaving both alone, and pairs with cost > cost_limit are never made. Solved exactly with
/// the Hungarian algorithm (shortest augmenting paths with potentials) on the square
/// (rows + cols) matrix [C, D_rows; D_cols, 0], separately for each connected component of
/// allowed pairs. O(k^3) for a component of k rows + columns. Deterministic; sorted by row.
std::vector<std::pair<int, int>> MinCostAssignment(
    const std::vector<float>& cost, int rows, int cols, float cost_limit);

}  // namespace fg::track::internal
