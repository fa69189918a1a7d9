// Task results as Celery's Redis result backend stores them: the key and channel of a task,
// the states, the values a worker writes (SUCCESS, FAILURE with the exception, REVOKED, ...)
// and what a client reads back. (docs/celery.md §6, §7)
#pragma once

#include "celery/python.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace pss::celery {

// Celery's result_expires default: results are stored with SETEX for this long.
inline constexpr std::chrono::seconds k_result_expires{86400};

// The result key (and pub/sub channel) of a task: "celery-task-meta-<id>".
std::string result_key(std::string_view task_id);

inline constexpr std::string_view k_pending = "PENDING";
inline constexpr std::string_view k_started = "STARTED";
inline constexpr std::string_view k_success = "SUCCESS";
inline constexpr std::string_view k_failure = "FAILURE";
inline constexpr std::string_view k_retry = "RETRY";
inline constexpr std::string_view k_revoked = "REVOKED";

// Result-backend values: {"status", "result", "traceback", "children": [], "date_done",
// "task_id"}, for SETEX result_key(id) k_result_expires and PUBLISH on the same name.
// date_done is naive UTC with microseconds, as Python's datetime.utcnow().isoformat().
// SUCCESS with the task's return value.
std::string success_meta(const std::string& task_id, const Json& result,
                         TimePoint date_done = std::chrono::system_clock::now());
// FAILURE with {"exc_type", "exc_message": exc_args, "exc_module"}; exc_args should be the list
// of the exception's arguments (a client raises exc_module.exc_type(*exc_args); use
// "builtins" and a builtin type, e.g. RuntimeError, to get that exact class). An empty
// traceback is stored as null.
std::string failure_meta(const std::string& task_id, std::string_view exc_type,
                         std::string_view exc_module, const Json& exc_args,
                         std::string_view traceback,
                         TimePoint date_done = std::chrono::system_clock::now());
// REVOKED with celery.exceptions.TaskRevokedError(why): why is "expired" or "revoked".
std::string revoked_meta(const std::string& task_id, std::string_view why,
                         TimePoint date_done = std::chrono::system_clock::now());
// FAILURE with celery.exceptions.NotRegistered(task_name): the task is not known here.
std::string not_registered_meta(const std::string& task_id, std::string_view task_name,
                                TimePoint date_done = std::chrono::system_clock::now());
// STARTED with {"pid", "hostname"} and date_done null (only with task_track_started).
std::string started_meta(const std::string& task_id, long pid, std::string_view hostname);

// A result-backend value as read by a client.
struct ResultMeta {
  std::string status;
  Json result; // the return value, or {"exc_type", "exc_message", "exc_module"}
  std::optional<std::string> traceback;
  std::optional<std::string> date_done;
  std::string task_id; // "" when absent

  // SUCCESS, FAILURE or REVOKED: the client stops waiting.
  bool ready() const;
  // For FAILURE, RETRY and REVOKED, the exception as Python prints its last line:
  // "RuntimeError: scan failed", "ValueError: ('bad depth', 7)", "TaskRevokedError: expired";
  // the status and the result's JSON when the result is not an exception. "" for other states.
  std::string error_text() const;
};
// Error if not a JSON object with a string "status" and a "result" member.
Result<ResultMeta> parse_result_meta(std::string_view json);

} // namespace pss::celery
