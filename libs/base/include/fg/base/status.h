// SPDX-License-Identifier: Apache-2.0
// Status and Result<T>: the error convention at every module boundary of Facegate.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace fg {

/// Error codes mirror gRPC, so the HTTP mapping is mechanical.
enum class StatusCode {
    kOk = 0,
    kInvalidArgument,
    kNotFound,
    kAlreadyExists,
    kFailedPrecondition,
    kResourceExhausted,
    kUnavailable,
    kDeadlineExceeded,
    kCancelled,
    kUnimplemented,
    kInternal,
    kDataLoss,
    kOutOfRange,
    kUnauthenticated,   ///< no valid credentials (HTTP 401)
    kPermissionDenied,  ///< valid credentials without the right (HTTP 403)
};

std::string_view StatusCodeName(StatusCode code);

/// A success or an error with a code and a message. The OK path holds no allocation.
/// Thread-safety: a value type; distinct objects may be used from distinct threads.
class [[nodiscard]] Status {
  public:
    Status() = default;
    Status(StatusCode code, std::string message);

    static Status Ok() { return {}; }

    bool ok() const { return rep_ == nullptr; }
    StatusCode code() const { return rep_ ? rep_->code : StatusCode::kOk; }
    const std::string& message() const;
    /// "INVALID_ARGUMENT: message" or "OK".
    std::string ToString() const;

    /// Returns a copy whose message is prefixed with `context: `.
    Status WithContext(std::string_view context) const;

  private:
    struct Rep {
        StatusCode code;
        std::string message;
    };
    std::shared_ptr<const Rep> rep_;
};

Status InvalidArgument(std::string message);
Status NotFound(std::string message);
Status AlreadyExists(std::string message);
Status FailedPrecondition(std::string message);
Status ResourceExhausted(std::string message);
Status Unavailable(std::string message);
Status Unimplemented(std::string message);
Status Internal(std::string message);
Status DataLoss(std::string message);
Status OutOfRange(std::string message);
Status Unauthenticated(std::string message);
Status PermissionDenied(std::string message);

/// A value or an error Status (std::expected is C++23).
template <typename T>
class [[nodiscard]] Result {
  public:
    Result(T value) : v_(std::move(value)) {}           // NOLINT(google-explicit-constructor)
    Result(Status status) : v_(std::move(status)) {}    // NOLINT(google-explicit-constructor)

    bool ok() const { return v_.index() == 0; }
    Status status() const { return ok() ? Status() : std::get<1>(v_); }

    T& value() & { return std::get<0>(v_); }
    const T& value() const& { return std::get<0>(v_); }
    T&& value() && { return std::get<0>(std::move(v_)); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

  private:
    std::variant<T, Status> v_;
};

}  // namespace fg

#define FG_CONCAT_INNER_(a, b) a##b
#define FG_CONCAT_(a, b) FG_CONCAT_INNER_(a, b)

/// Returns the Status from the enclosing function if `expr` is not OK.
#define FG_RETURN_IF_ERROR(expr)                 \
    do {                                         \
        ::fg::Status fg_status_ = (expr);        \
        if (!fg_status_.ok()) return fg_status_; \
    } while (0)

/// `FG_ASSIGN_OR_RETURN(auto x, MakeX());` binds the value or returns the error.
#define FG_ASSIGN_OR_RETURN(lhs, expr) FG_ASSIGN_OR_RETURN_IMPL_(FG_CONCAT_(fg_result_, __LINE__), lhs, expr)
#define FG_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
    auto tmp = (expr);                            \
    if (!tmp.ok()) return tmp.status();           \
    lhs = std::move(tmp).value()
