// SPDX-License-Identifier: Apache-2.0
#include "fg/base/status.h"

namespace fg {

std::string_view StatusCodeName(StatusCode code) {
    switch (code) {
        case StatusCode::kOk: return "OK";
        case StatusCode::kInvalidArgument: return "INVALID_ARGUMENT";
        case StatusCode::kNotFound: return "NOT_FOUND";
        case StatusCode::kAlreadyExists: return "ALREADY_EXISTS";
        case StatusCode::kFailedPrecondition: return "FAILED_PRECONDITION";
        case StatusCode::kResourceExhausted: return "RESOURCE_EXHAUSTED";
        case StatusCode::kUnavailable: return "UNAVAILABLE";
        case StatusCode::kDeadlineExceeded: return "DEADLINE_EXCEEDED";
        case StatusCode::kCancelled: return "CANCELLED";
        case StatusCode::kUnimplemented: return "UNIMPLEMENTED";
        case StatusCode::kInternal: return "INTERNAL";
        case StatusCode::kDataLoss: return "DATA_LOSS";
        case StatusCode::kOutOfRange: return "OUT_OF_RANGE";
        case StatusCode::kUnauthenticated: return "UNAUTHENTICATED";
        case StatusCode::kPermissionDenied: return "PERMISSION_DENIED";
    }
    return "UNKNOWN";
}

Status::Status(StatusCode code, std::string message) {
    if (code != StatusCode::kOk) rep_ = std::make_shared<const Rep>(Rep{code, std::move(message)});
}

const std::string& Status::message() const {
    static const std::string kEmpty;
    return rep_ ? rep_->message : kEmpty;
}

std::string Status::ToString() const {
    if (ok()) return "OK";
    return std::string(StatusCodeName(rep_->code)) + ": " + rep_->message;
}

Status Status::WithContext(std::string_view context) const {
    if (ok()) return *this;
    return Status(rep_->code, std::string(context) + ": " + rep_->message);
}

Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
Status AlreadyExists(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
Status FailedPrecondition(std::string m) { return {StatusCode::kFailedPrecondition, std::move(m)}; }
Status ResourceExhausted(std::string m) { return {StatusCode::kResourceExhausted, std::move(m)}; }
Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
Status Unimplemented(std::string m) { return {StatusCode::kUnimplemented, std::move(m)}; }
Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
Status DataLoss(std::string m) { return {StatusCode::kDataLoss, std::move(m)}; }
Status OutOfRange(std::string m) { return {StatusCode::kOutOfRange, std::move(m)}; }
Status Unauthenticated(std::string m) { return {StatusCode::kUnauthenticated, std::move(m)}; }
Status PermissionDenied(std::string m) { return {StatusCode::kPermissionDenied, std::move(m)}; }

}  // namespace fg
