// SPDX-License-Identifier: Apache-2.0
// The helpers are inline (small, called rarely); this file makes the header compile on its own.
#include "fg/sqlite/sqlite_db.h"
