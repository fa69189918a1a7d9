#include "celery/protocol.hpp"

#include "util/base64.hpp"
#include "util/iso8601.hpp"
#include "util/uuid.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <fmt/format.h>
#include <limits>
#include <stdexcept>
#include <unistd.h>

namespace pss::celery {

namespace {

using namespace std::chrono;

// kombu's PRIORITY_STEPS: each list takes the priorities from its step up to the next one.
constexpr std::array<int, 4> k_priority_steps = {0, 3, 6, 9};

// Celery's as_task_v2: argsrepr_maxsize and kwargsrepr_maxsize.
constexpr std::size_t k_repr_maxsize = 1024;

// --- Python's json.dumps -------------------------------------------------------------------

// A scalar (or a string) as json.dumps writes it: nlohmann's output with ensure_ascii matches
// it (lowercase \u escapes, surrogate pairs, shortest round-trip floats).
std::string dump_scalar(const Json& v) {
  return v.dump(-1, ' ', true, Json::error_handler_t::replace);
}

void write_python_json(std::string& out, const Json& v) {
  if (v.is_object()) {
    out += '{';
    bool first = true;
    for (const auto& [key, value] : v.items()) {
      if (!first) {
        out += ", ";
      }
      first = false;
      out += dump_scalar(Json(key));
      out += ": ";
      write_python_json(out, value);
    }
    out += '}';
  } else if (v.is_array()) {
    out += '[';
    bool first = true;
    for (const auto& value : v) {
      if (!first) {
        out += ", ";
      }
      first = false;
      write_python_json(out, value);
    }
    out += ']';
  } else {
    out += dump_scalar(v);
  }
}

// --- celery.utils.saferepr ----------------------------------------------------------------

// Python's len() of UTF-8 text: code points (continuation bytes do not count).
std::size_t code_points(std::string_view s) {
  return static_cast<std::size_t>(std::ranges::count_if(
      s, [](char c) { return (static_cast<unsigned char>(c) & 0xc0) != 0x80; }));
}

// The byte length of the first n code points of s.
std::size_t prefix_bytes(std::string_view s, std::size_t n) {
  std::size_t i = 0;
  for (std::size_t seen = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xc0) != 0x80 && seen++ == n) {
      break;
    }
  }
  return i;
}

// celery.utils.text.truncate(s, maxlen): past maxlen, cut at the last space and add "...".
std::string truncate(std::string_view s, std::size_t maxlen) {
  if (maxlen == 0 || code_points(s) < maxlen) {
    return std::string(s);
  }
  std::string_view head = s.substr(0, prefix_bytes(s, maxlen));
  if (const auto space = head.rfind(' '); space != std::string_view::npos) {
    head = head.substr(0, space);
  }
  return std::string(head) + "...";
}

struct ReprToken {
  enum class Kind { open, close, separator, quoted, plain };
  Kind kind;
  std::string text; // the literal, the raw string (quoted) or the rendered scalar (plain)
};

// The token stream of saferepr's reprstream(): containers open and close, elements are
// separated; containers at level >= maxlevels (3) are a single "[...]" or "{...}".
void repr_tokens(const Json& v, int level, std::vector<ReprToken>& out) {
  using Kind = ReprToken::Kind;
  constexpr int k_maxlevels = 3;
  if (v.is_array() || v.is_object()) {
    const bool is_object = v.is_object();
    const std::string open = is_object ? "{" : "[";
    const std::string close = is_object ? "}" : "]";
    if (level >= k_maxlevels) {
      out.push_back({Kind::plain, open + "..." + close});
      return;
    }
    out.push_back({Kind::open, open});
    std::size_t i = 0;
    for (const auto& [key, value] : v.items()) {
      if (i++ > 0) {
        out.push_back({Kind::separator, ", "});
      }
      if (is_object) {
        out.push_back({Kind::quoted, key});
        out.push_back({Kind::separator, ": "});
      }
      repr_tokens(value, level + 1, out);
    }
    out.push_back({Kind::close, close});
  } else if (v.is_string()) {
    out.push_back({Kind::quoted, v.get<std::string>()});
  } else if (v.is_null()) {
    out.push_back({Kind::plain, "None"});
  } else if (v.is_boolean()) {
    out.push_back({Kind::plain, v.get<bool>() ? "True" : "False"});
  } else {
    out.push_back({Kind::plain, dump_scalar(v)}); // Python's str() of a number
  }
}

// Python's repr() of a str: single quotes unless only the other kind avoids escaping.
std::string python_str_repr(std::string_view s) {
  const bool has_single = s.find('\'') != std::string_view::npos;
  const bool has_double = s.find('"') != std::string_view::npos;
  const char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, quote);
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == quote || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7f) {
      out += fmt::format("\\x{:02x}", u);
    } else {
      out += c;
    }
  }
  out += quote;
  return out;
}

// Python's repr() of a JSON-decoded value (for exception messages).
std::string python_repr(const Json& v) {
  if (v.is_string()) {
    return python_str_repr(v.get_ref<const std::string&>());
  }
  if (v.is_null()) {
    return "None";
  }
  if (v.is_boolean()) {
    return v.get<bool>() ? "True" : "False";
  }
  if (v.is_array() || v.is_object()) {
    std::string out = v.is_object() ? "{" : "[";
    std::size_t i = 0;
    for (const auto& [key, value] : v.items()) {
      if (i++ > 0) {
        out += ", ";
      }
      if (v.is_object()) {
        out += python_str_repr(key) + ": ";
      }
      out += python_repr(value);
    }
    return out + (v.is_object() ? "}" : "]");
  }
  return dump_scalar(v);
}

// --- Envelope parsing helpers ---------------------------------------------------------------

// A JSON value as it appears in an error message, shortened.
std::string shown(const Json& v) {
  std::string s = to_python_json(v);
  if (s.size() > 60) {
    s = s.substr(0, 57) + "...";
  }
  return s;
}

Error message_error(std::string_view what) {
  return make_error(fmt::format("celery message: {}", what));
}

Error type_error(std::string_view field, std::string_view expected, const Json& v) {
  return message_error(
      fmt::format("{} must be {}, got {} {}", field, expected, v.type_name(), shown(v)));
}

// Text → JSON; Error says where parsing failed (nlohmann's message without its tag).
Result<Json> parse_json(std::string_view text, std::string_view what) {
  // nlohmann stops at a NUL as at the end of the input: "{...}\0junk" would parse, and the
  // copy kept for a redelivery (unacked_value) would then not.
  if (const auto nul = text.find('\0'); nul != std::string_view::npos) {
    return make_error(fmt::format("{} is not JSON (a NUL byte at offset {})", what, nul));
  }
  try {
    return Json::parse(text);
  } catch (const Json::exception& e) { // parse_error, and out_of_range for a number like 1e999
    std::string_view why = e.what();
    if (const auto tag_end = why.find("] ");
        why.starts_with("[json.exception.") && tag_end != std::string_view::npos) {
      why.remove_prefix(tag_end + 2);
    }
    return make_error(fmt::format("{} is not JSON ({})", what, why));
  }
}

// The member `key` of object `j`, or nullptr when absent or null.
const Json* member(const Json& j, std::string_view key) {
  const auto it = j.find(key);
  return (it == j.end() || it->is_null()) ? nullptr : &*it;
}

Result<std::string> required_string(const Json& j, std::string_view object_name,
                                    std::string_view key) {
  const std::string field = fmt::format("{}.{}", object_name, key);
  const Json* v = member(j, key);
  if (v == nullptr) {
    return message_error(fmt::format("{} is missing", field));
  }
  if (!v->is_string()) {
    return type_error(field, "a string", *v);
  }
  return v->get<std::string>();
}

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

// --- Results -------------------------------------------------------------------------------

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

// --- Redis names ----------------------------------------------------------------------------

std::vector<std::string> priority_lists(std::string_view queue) {
  std::vector<std::string> lists;
  for (const int step : k_priority_steps) {
    lists.push_back(list_for_priority(queue, step));
  }
  return lists;
}

std::string list_for_priority(std::string_view queue, int priority) {
  priority = std::clamp(priority, k_priority_steps.front(), k_priority_steps.back());
  const auto step = *std::prev(std::ranges::upper_bound(k_priority_steps, priority));
  if (step == 0) {
    return std::string(queue);
  }
  return fmt::format("{}{}{}", queue, k_sep, step);
}

std::string queue_of_list(std::string_view list) {
  const auto pos = list.rfind(k_sep);
  return std::string(pos == std::string_view::npos ? list : list.substr(0, pos));
}

std::string binding_key(std::string_view queue) {
  return fmt::format("_kombu.binding.{}", queue);
}

std::string binding_member(std::string_view queue) {
  return fmt::format("{}{}{}{}", queue, k_sep, k_sep, queue);
}

std::vector<std::string> bound_queues(const std::vector<std::string>& members,
                                      std::string_view routing_key) {
  std::vector<std::string> queues;
  for (const std::string_view member : members) {
    const auto first = member.find(k_sep);
    if (first == std::string_view::npos) {
      continue;
    }
    const auto second = member.find(k_sep, first + k_sep.size());
    if (second == std::string_view::npos ||
        member.find(k_sep, second + k_sep.size()) != std::string_view::npos) {
      continue;
    }
    const std::string queue(member.substr(second + k_sep.size()));
    if (member.substr(0, first) == routing_key &&
        std::ranges::find(queues, queue) == queues.end()) {
      queues.push_back(queue);
    }
  }
  return queues;
}

std::string result_key(std::string_view task_id) {
  return fmt::format("celery-task-meta-{}", task_id);
}

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

std::string unacked_value(const TaskMessage& m) {
  return fmt::format("[{}, {}, {}]", m.raw, dump_scalar(Json(m.exchange)),
                     dump_scalar(Json(m.routing_key)));
}

Result<Redelivery> redelivery_from_unacked(std::string_view unacked_json) {
  const auto fail = [](std::string_view what) {
    return make_error(fmt::format("unacked entry: {}", what));
  };
  auto parsed = parse_json(unacked_json, "the value");
  if (!parsed) {
    return fail(parsed.error().message);
  }
  Json& entry = *parsed;
  if (!entry.is_array() || entry.size() != 3 || !entry[0].is_object() || !entry[1].is_string() ||
      !entry[2].is_string()) {
    return fail(fmt::format("expected [message, exchange, routing_key], got {}", shown(entry)));
  }
  Redelivery r;
  r.exchange = entry[1].get<std::string>();
  r.routing_key = entry[2].get<std::string>();
  if (r.exchange.empty()) {
    if (r.routing_key.empty()) {
      return fail("neither an exchange nor a routing key: no queue to restore to");
    }
    r.queue = r.routing_key;
  }
  // kombu sets the headers flag first and stops at the first missing object (KeyError).
  Json& message = entry[0];
  if (const auto headers = message.find("headers");
      headers != message.end() && headers->is_object()) {
    (*headers)["redelivered"] = true;
    if (const auto properties = message.find("properties");
        properties != message.end() && properties->is_object()) {
      if (const auto info = properties->find("delivery_info");
          info != properties->end() && info->is_object()) {
        (*info)["redelivered"] = true;
      }
    }
  }
  r.message = to_python_json(message);
  return r;
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

// --- Python renderings ----------------------------------------------------------------------

Result<TimePoint> parse_isoformat(std::string_view s) {
  return parse_iso8601(s);
}

std::string to_isoformat(TimePoint t) {
  return format_iso8601(t, true, "+00:00");
}

std::string to_isoformat_naive(TimePoint t) {
  return format_iso8601(t, true, "");
}

std::string to_python_json(const Json& value) {
  std::string out;
  write_python_json(out, value);
  return out;
}

std::string saferepr(const Json& value, std::size_t maxlen) {
  using Kind = ReprToken::Kind;
  std::vector<ReprToken> tokens;
  repr_tokens(value, 0, tokens);
  // _saferepr(): each token is rendered against what is left of maxlen; once nothing is left,
  // ", ..." and the closing brackets of the containers still open end the text.
  auto left = static_cast<long long>(maxlen);
  std::vector<std::string> open;
  std::string out;
  for (const auto& token : tokens) {
    const bool exhausted = left <= 0;
    if (token.kind == Kind::open) {
      open.push_back(token.text == "[" ? "]" : "}");
    } else if (token.kind == Kind::close && !open.empty()) {
      open.pop_back();
    }
    if (exhausted) {
      out += ", ...";
      for (auto it = open.rbegin(); it != open.rend(); ++it) {
        out += *it;
      }
      return out;
    }
    std::string text;
    switch (token.kind) {
    case Kind::quoted: {
      std::string quoted = truncate(token.text, static_cast<std::size_t>(left));
      text = "'";
      for (const char c : quoted) {
        text += c == '\'' ? "\\'" : std::string(1, c);
      }
      text += "'";
      break;
    }
    case Kind::plain:
      text = truncate(token.text, static_cast<std::size_t>(left));
      break;
    default:
      text = token.text;
    }
    out += text;
    left -= static_cast<long long>(code_points(text));
  }
  return out;
}

} // namespace pss::celery
