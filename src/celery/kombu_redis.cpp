#include "celery/kombu_redis.hpp"

#include "celery/message_json.hpp"

#include <algorithm>
#include <array>
#include <fmt/format.h>

namespace pss::celery {

namespace {

// kombu's PRIORITY_STEPS: each list takes the priorities from its step up to the next one.
constexpr std::array<int, 4> k_priority_steps = {0, 3, 6, 9};

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

std::string unacked_value(const TaskMessage& m) {
  return fmt::format("[{}, {}, {}]", m.raw, to_python_json(Json(m.exchange)),
                     to_python_json(Json(m.routing_key)));
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

} // namespace pss::celery
