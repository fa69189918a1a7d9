#include "celery/result_meta.hpp"

#include "celery/message_json.hpp"

#include <fmt/format.h>
#include <unistd.h>

namespace pss::celery {

namespace {

std::string result_meta(std::string_view status, const std::string& task_id, const Json& result,
                        std::string_view traceback, std::optional<TimePoint> date_done) {
  Json meta = Json::object();
  meta["status"] = status;
  meta["result"] = result;
  meta["traceback"] = traceback.empty() ? Json() : Json(traceback);
  meta["children"] = Json::array();
  meta["date_done"] = date_done ? Json(to_isoformat_naive(*date_done)) : Json();
  meta["task_id"] = task_id;
  return to_python_json(meta);
}

Json exception_result(std::string_view exc_type, const Json& exc_args,
                      std::string_view exc_module) {
  Json exc = Json::object();
  exc["exc_type"] = exc_type;
  exc["exc_message"] = exc_args;
  exc["exc_module"] = exc_module;
  return exc;
}

} // namespace

std::string result_key(std::string_view task_id) {
  return fmt::format("celery-task-meta-{}", task_id);
}

// --- Results --------------------------------------------------------------------------------

std::string success_meta(const std::string& task_id, const Json& result, TimePoint date_done) {
  return result_meta(k_success, task_id, result, "", date_done);
}

std::string failure_meta(const std::string& task_id, std::string_view exc_type,
                         std::string_view exc_module, const Json& exc_args,
                         std::string_view traceback, TimePoint date_done) {
  return result_meta(k_failure, task_id, exception_result(exc_type, exc_args, exc_module),
                     traceback, date_done);
}

std::string revoked_meta(const std::string& task_id, std::string_view why, TimePoint date_done) {
  return result_meta(k_revoked, task_id,
                     exception_result("TaskRevokedError", Json::array({why}), "celery.exceptions"),
                     "", date_done);
}

std::string not_registered_meta(const std::string& task_id, std::string_view task_name,
                                TimePoint date_done) {
  return result_meta(
      k_failure, task_id,
      exception_result("NotRegistered", Json::array({task_name}), "celery.exceptions"), "",
      date_done);
}

std::string started_meta(const std::string& task_id, long pid, std::string_view hostname) {
  Json result = Json::object();
  result["pid"] = pid;
  result["hostname"] = hostname;
  return result_meta(k_started, task_id, result, "", std::nullopt);
}

bool ResultMeta::ready() const {
  return status == k_success || status == k_failure || status == k_revoked;
}

std::string ResultMeta::error_text() const {
  if (status != k_failure && status != k_retry && status != k_revoked) {
    return "";
  }
  const Json* type = result.is_object() ? member(result, "exc_type") : nullptr;
  if (type == nullptr || !type->is_string()) {
    return fmt::format("{}: {}", status, to_python_json(result));
  }
  const std::string name = type->get<std::string>();
  const Json* message = member(result, "exc_message");
  std::string text;
  if (message == nullptr) {
    text = "";
  } else if (message->is_string()) { // a plain string is the single argument
    text = message->get<std::string>();
  } else if (!message->is_array()) {
    text = python_repr(*message);
  } else if (message->size() == 1) { // str(exc) is str(args[0])
    const Json& arg = (*message)[0];
    text = arg.is_string() ? arg.get<std::string>() : python_repr(arg);
  } else if (message->size() > 1) { // str(exc) is str(args), a tuple
    text = "(";
    for (std::size_t i = 0; i < message->size(); ++i) {
      text += (i > 0 ? ", " : "") + python_repr((*message)[i]);
    }
    text += ")";
  }
  return text.empty() ? name : fmt::format("{}: {}", name, text);
}

Result<ResultMeta> parse_result_meta(std::string_view json) {
  const auto fail = [](std::string_view what) {
    return make_error(fmt::format("celery result: {}", what));
  };
  auto parsed = parse_json(json, "the value");
  if (!parsed) {
    return fail(parsed.error().message);
  }
  const Json& j = *parsed;
  if (!j.is_object()) {
    return fail(fmt::format("expected a JSON object, got {} {}", j.type_name(), shown(j)));
  }
  ResultMeta meta;
  const Json* status = member(j, "status");
  if (status == nullptr || !status->is_string()) {
    return fail("status is missing or not a string");
  }
  meta.status = status->get<std::string>();
  if (!j.contains("result")) {
    return fail("result is missing");
  }
  meta.result = j["result"];
  if (const Json* traceback = member(j, "traceback"); traceback != nullptr) {
    meta.traceback =
        traceback->is_string() ? traceback->get<std::string>() : to_python_json(*traceback);
  }
  if (const Json* date_done = member(j, "date_done");
      date_done != nullptr && date_done->is_string()) {
    meta.date_done = date_done->get<std::string>();
  }
  if (const Json* task_id = member(j, "task_id"); task_id != nullptr && task_id->is_string()) {
    meta.task_id = task_id->get<std::string>();
  }
  return meta;
}

} // namespace pss::celery
