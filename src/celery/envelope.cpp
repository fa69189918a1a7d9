#include "celery/envelope.hpp"

#include "celery/message_json.hpp"
#include "util/base64.hpp"
#include "util/uuid.hpp"

#include <array>
#include <fmt/format.h>
#include <stdexcept>
#include <unistd.h>

namespace pss::celery {

namespace {

using namespace std::chrono;

// Celery's as_task_v2: argsrepr_maxsize and kwargsrepr_maxsize.
constexpr std::size_t k_repr_maxsize = 1024;

Result<std::optional<TimePoint>> optional_time(const Json& headers, std::string_view key) {
  const Json* v = member(headers, key);
  if (v == nullptr) {
    return std::optional<TimePoint>();
  }
  const std::string field = fmt::format("headers.{}", key);
  if (!v->is_string()) {
    return type_error(field, "an ISO 8601 string", *v);
  }
  auto t = parse_isoformat(v->get_ref<const std::string&>());
  if (!t) {
    return message_error(fmt::format("{}: {}", field, t.error().message));
  }
  return std::optional<TimePoint>(*t);
}

Result<void> read_timelimit(const Json& headers, TaskMessage& m) {
  const Json* v = member(headers, "timelimit");
  if (v == nullptr) {
    return {};
  }
  constexpr std::string_view k_expected = "[hard, soft] (numbers or nulls)";
  if (!v->is_array() || v->size() != 2) {
    return type_error("headers.timelimit", k_expected, *v);
  }
  std::array<std::optional<double>*, 2> limits = {&m.time_limit, &m.soft_time_limit};
  for (std::size_t i = 0; i < 2; ++i) {
    const Json& limit = (*v)[i];
    if (limit.is_number()) {
      *limits[i] = limit.get<double>();
    } else if (!limit.is_null()) {
      return type_error("headers.timelimit", k_expected, *v);
    }
  }
  return {};
}

bool flag(const Json* object, std::string_view key) {
  if (object == nullptr || !object->is_object()) {
    return false;
  }
  const Json* v = member(*object, key);
  return v != nullptr && v->is_boolean() && v->get<bool>();
}

// The body [args, kwargs, embed] into m.
Result<void> read_body(const Json& body, TaskMessage& m) {
  if (!body.is_array() || body.size() != 3) {
    return type_error("the body", "a JSON array [args, kwargs, embed]", body);
  }
  if (!body[0].is_array()) {
    return type_error("the body's args", "a list", body[0]);
  }
  if (!body[1].is_object()) {
    return type_error("the body's kwargs", "an object", body[1]);
  }
  if (!body[2].is_object() && !body[2].is_null()) {
    return type_error("the body's embed", "an object or null", body[2]);
  }
  m.args = body[0];
  m.kwargs = body[1];
  m.embed = body[2];
  return {};
}

} // namespace

// --- Receiving ------------------------------------------------------------------------------

namespace {

// content-type must be application/json; content-encoding utf-8 or absent.
Result<void> check_content(const Json* content_type, const Json* encoding) {
  if (content_type == nullptr) {
    return message_error("content-type is missing (only application/json is accepted)");
  }
  if (!content_type->is_string() || *content_type != "application/json") {
    return message_error(fmt::format("content-type {} is not accepted (only application/json)",
                                     shown(*content_type)));
  }
  if (encoding != nullptr) {
    std::string e = encoding->is_string() ? encoding->get<std::string>() : "";
    std::ranges::transform(e, e.begin(), [](char c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; });
    if (e != "utf-8" && e != "utf8") {
      return message_error(
          fmt::format("content-encoding {} is not supported (only utf-8)", shown(*encoding)));
    }
  }
  return {};
}

Result<void> check_headers(const Json* headers) {
  if (headers == nullptr) {
    return message_error("headers are missing");
  }
  if (!headers->is_object()) {
    return type_error("headers", "an object", *headers);
  }
  if (const Json* compression = member(*headers, "compression"); compression != nullptr) {
    return message_error(fmt::format("compressed bodies (headers.compression {}) are not supported",
                                     shown(*compression)));
  }
  return {};
}

// What every broker carries in the headers (checked): id, task, eta, expires, time limits, flags.
Result<void> read_headers(const Json* headers, TaskMessage& m) {
  m.id = PSS_TRY(required_string(*headers, "headers", "id"));
  m.task = PSS_TRY(required_string(*headers, "headers", "task"));
  m.eta = PSS_TRY(optional_time(*headers, "eta"));
  m.expires = PSS_TRY(optional_time(*headers, "expires"));
  PSS_TRY_VOID(read_timelimit(*headers, m));
  if (const Json* v = member(*headers, "ignore_result"); v != nullptr) {
    if (!v->is_boolean()) {
      return type_error("headers.ignore_result", "a boolean", *v);
    }
    m.ignore_result = v->get<bool>();
  }
  if (const Json* v = member(*headers, "retries"); v != nullptr) {
    if (!v->is_number_integer() || *v < 0 || *v > std::numeric_limits<int>::max()) {
      return type_error("headers.retries", "a non-negative integer", *v);
    }
    m.retries = v->get<int>();
  }
  return {};
}

// The decoded body text: JSON [args, kwargs, embed].
Result<void> read_body_text(std::string_view body_text, TaskMessage& m) {
  if (body_text.empty()) {
    return message_error("body is empty");
  }
  auto decoded_body = parse_json(body_text, "the body");
  if (!decoded_body) {
    return message_error(decoded_body.error().message);
  }
  return read_body(*decoded_body, m);
}

} // namespace

Result<TaskMessage> parse_envelope(std::string_view raw) {
  auto parsed = parse_json(raw, "the envelope");
  if (!parsed) {
    return message_error(parsed.error().message);
  }
  const Json& envelope = *parsed;
  if (!envelope.is_object()) {
    return type_error("the envelope", "a JSON object", envelope);
  }
  PSS_TRY_VOID(
      check_content(member(envelope, "content-type"), member(envelope, "content-encoding")));
  const Json* headers = member(envelope, "headers");
  PSS_TRY_VOID(check_headers(headers));
  const Json* properties = member(envelope, "properties");
  if (properties == nullptr) {
    return message_error("properties are missing");
  }
  if (!properties->is_object()) {
    return type_error("properties", "an object", *properties);
  }

  TaskMessage m;
  m.raw = std::string(raw);
  PSS_TRY_VOID(read_headers(headers, m));
  m.delivery_tag = PSS_TRY(required_string(*properties, "properties", "delivery_tag"));
  const Json* delivery_info = member(*properties, "delivery_info");
  if (delivery_info == nullptr) {
    return message_error("properties.delivery_info is missing");
  }
  if (!delivery_info->is_object()) {
    return type_error("properties.delivery_info", "an object", *delivery_info);
  }
  m.exchange = PSS_TRY(required_string(*delivery_info, "properties.delivery_info", "exchange"));
  m.routing_key =
      PSS_TRY(required_string(*delivery_info, "properties.delivery_info", "routing_key"));
  m.redelivered = flag(headers, "redelivered") || flag(delivery_info, "redelivered");

  const Json* body = member(envelope, "body");
  if (body == nullptr) {
    return message_error("body is missing");
  }
  if (!body->is_string()) {
    return type_error("body", "a string", *body);
  }
  std::string body_text = body->get<std::string>();
  if (const Json* encoding = member(*properties, "body_encoding"); encoding != nullptr) {
    if (*encoding != "base64") {
      return message_error(fmt::format(
          "properties.body_encoding {} is not supported (only base64 or none)", shown(*encoding)));
    }
    auto decoded = base64_decode(body_text);
    if (!decoded) {
      return message_error(fmt::format("body is not base64 ({})", decoded.error().message));
    }
    body_text = std::move(*decoded);
  }
  PSS_TRY_VOID(read_body_text(body_text, m));
  return m;
}

Result<TaskMessage> parse_amqp_message(const AmqpMessage& msg, AmqpDelivery delivery) {
  const Json content_type(msg.content_type);
  const Json encoding(msg.content_encoding);
  PSS_TRY_VOID(check_content(msg.content_type.empty() ? nullptr : &content_type,
                             msg.content_encoding.empty() ? nullptr : &encoding));
  PSS_TRY_VOID(check_headers(&msg.headers));
  TaskMessage m;
  PSS_TRY_VOID(read_headers(&msg.headers, m));
  m.delivery_tag = std::move(delivery.tag);
  m.exchange = std::move(delivery.exchange);
  m.routing_key = std::move(delivery.routing_key);
  m.redelivered = delivery.redelivered || flag(&msg.headers, "redelivered");
  PSS_TRY_VOID(read_body_text(msg.body, m));
  return m;
}

// --- Sending --------------------------------------------------------------------------------

EnvelopeStamp fresh_stamp() {
  static const std::string process_reply_to = uuid4();
  return {uuid4(), process_reply_to, system_clock::now()};
}

std::string anon_nodename() {
  std::array<char, 256> host{};
  if (gethostname(host.data(), host.size() - 1) != 0) {
    host[0] = '\0';
  }
  return fmt::format("gen{}@{}", getpid(), host.data());
}

std::string make_envelope(const std::string& task_id, const std::string& task_name,
                          const Json& args, const Json& kwargs, const SendOptions& opts) {
  return make_envelope(task_id, task_name, args, kwargs, opts, fresh_stamp());
}

namespace {

// What every broker carries: the headers, the body [args, kwargs, embed], and the properties
// AMQP has natively (correlation_id, reply_to, delivery_mode, expiration), in Python's order.
struct TaskParts {
  Json headers = Json::object();
  Json body;
  Json properties = Json::object();
};

TaskParts make_task_parts(const std::string& task_id, const std::string& task_name,
                          const Json& args, const Json& kwargs, const SendOptions& opts,
                          const EnvelopeStamp& stamp) {
  const Json task_args = args.is_null() ? Json::array() : args;
  const Json task_kwargs = kwargs.is_null() ? Json::object() : kwargs;
  if (!task_args.is_array()) {
    throw std::invalid_argument(fmt::format("task args must be a list, got {}", args.type_name()));
  }
  if (!task_kwargs.is_object()) {
    throw std::invalid_argument(
        fmt::format("task kwargs must be an object, got {}", kwargs.type_name()));
  }
  const auto optional_number = [](const std::optional<double>& v) {
    if (!v) {
      return Json();
    }
    // A whole number of seconds as an integer, as Python sends time_limit=30.
    if (std::isfinite(*v) && std::abs(*v) < 1e15 &&
        *v == static_cast<double>(static_cast<long long>(*v))) {
      return Json(static_cast<long long>(*v));
    }
    return Json(*v);
  };
  const auto optional_time = [](const std::optional<TimePoint>& t) {
    return t ? Json(to_isoformat(*t)) : Json();
  };

  TaskParts p;
  Json& headers = p.headers;
  headers["lang"] = "py";
  headers["task"] = task_name;
  headers["id"] = task_id;
  headers["shadow"] = nullptr;
  headers["eta"] = optional_time(opts.eta);
  headers["expires"] = optional_time(opts.expires);
  headers["group"] = nullptr;
  headers["group_index"] = nullptr;
  headers["retries"] = 0;
  headers["timelimit"] =
      Json::array({optional_number(opts.time_limit), optional_number(opts.soft_time_limit)});
  headers["root_id"] = task_id;
  headers["parent_id"] = nullptr;
  headers["argsrepr"] = saferepr(task_args, k_repr_maxsize);
  headers["kwargsrepr"] = saferepr(task_kwargs, k_repr_maxsize);
  headers["origin"] = opts.origin.empty() ? anon_nodename() : opts.origin;
  headers["ignore_result"] = opts.ignore_result;

  Json& properties = p.properties;
  properties["correlation_id"] = task_id;
  properties["reply_to"] = stamp.reply_to;
  properties["delivery_mode"] = 2;
  if (opts.expires) {
    // kombu: str(int(expires_s * 1000)), with a past expiry counted as 0.
    const auto left = std::max(floor<microseconds>(*opts.expires - stamp.now), microseconds(0));
    properties["expiration"] = std::to_string(left.count() / 1000);
  }

  Json embed = Json::object();
  embed["callbacks"] = nullptr;
  embed["errbacks"] = nullptr;
  embed["chain"] = nullptr;
  embed["chord"] = nullptr;
  p.body = Json::array({task_args, task_kwargs, embed});
  return p;
}

} // namespace

std::string make_envelope(const std::string& task_id, const std::string& task_name,
                          const Json& args, const Json& kwargs, const SendOptions& opts,
                          const EnvelopeStamp& stamp) {
  TaskParts p = make_task_parts(task_id, task_name, args, kwargs, opts, stamp);
  // The Redis transport's own properties follow the native ones.
  Json delivery_info = Json::object();
  delivery_info["exchange"] = "";
  delivery_info["routing_key"] = opts.queue;
  p.properties["delivery_info"] = std::move(delivery_info);
  p.properties["priority"] = opts.priority;
  p.properties["body_encoding"] = "base64";
  p.properties["delivery_tag"] = stamp.delivery_tag;

  Json envelope = Json::object();
  envelope["body"] = base64_encode(to_python_json(p.body));
  envelope["content-encoding"] = "utf-8";
  envelope["content-type"] = "application/json";
  envelope["headers"] = std::move(p.headers);
  envelope["properties"] = std::move(p.properties);
  return to_python_json(envelope);
}

AmqpMessage make_amqp_message(const std::string& task_id, const std::string& task_name,
                              const Json& args, const Json& kwargs, const SendOptions& opts) {
  return make_amqp_message(task_id, task_name, args, kwargs, opts, fresh_stamp());
}

AmqpMessage make_amqp_message(const std::string& task_id, const std::string& task_name,
                              const Json& args, const Json& kwargs, const SendOptions& opts,
                              const EnvelopeStamp& stamp) {
  TaskParts p = make_task_parts(task_id, task_name, args, kwargs, opts, stamp);
  AmqpMessage m;
  m.body = to_python_json(p.body);
  m.headers = std::move(p.headers);
  m.correlation_id = task_id;
  m.reply_to = stamp.reply_to;
  m.delivery_mode = 2;
  m.priority = std::clamp(opts.priority, 0, 255);
  if (const auto it = p.properties.find("expiration"); it != p.properties.end()) {
    m.expiration = it->get<std::string>();
  }
  return m;
}

} // namespace pss::celery
