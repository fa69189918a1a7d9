#include "celery/amqp.hpp"

#include "util/percent.hpp"

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <charconv>
#include <cmath>
#include <fmt/format.h>
#include <limits>
#include <list>
#include <vector>

namespace pss::celery {

namespace {

constexpr amqp_channel_t k_channel = 1;

timeval to_timeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

amqp_bytes_t bytes_of(std::string_view s) {
  return {s.size(), const_cast<char*>(s.data())};
}

std::string to_string(amqp_bytes_t b) {
  return b.len == 0 ? std::string() : std::string(static_cast<const char*>(b.bytes), b.len);
}

// Why an RPC failed, in words: the library's error, or the broker's close with its code.
std::string describe_reply(const amqp_rpc_reply_t& r) {
  switch (r.reply_type) {
  case AMQP_RESPONSE_NORMAL:
    return "ok";
  case AMQP_RESPONSE_NONE:
    return "no reply (missing RPC reply type)";
  case AMQP_RESPONSE_LIBRARY_EXCEPTION:
    return amqp_error_string2(r.library_error);
  case AMQP_RESPONSE_SERVER_EXCEPTION:
    if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
      const auto* m = static_cast<const amqp_connection_close_t*>(r.reply.decoded);
      return fmt::format("the broker closed the connection: {} {}", m->reply_code,
                         to_string(m->reply_text));
    }
    if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
      const auto* m = static_cast<const amqp_channel_close_t*>(r.reply.decoded);
      return fmt::format("the broker closed the channel: {} {}", m->reply_code,
                         to_string(m->reply_text));
    }
    return fmt::format("unexpected method 0x{:08x} from the broker", r.reply.id);
  }
  return "unknown reply";
}

// --- Field tables ----------------------------------------------------------------------------

// Builds librabbitmq tables from JSON; owns every byte they point to.
class TableBuilder {
public:
  amqp_table_t table(const Json& object) {
    auto& entries = m_entries.emplace_back();
    entries.reserve(object.size());
    for (const auto& [key, value] : object.items()) {
      amqp_table_entry_t e{};
      e.key = keep(key);
      e.value = field(value);
      entries.push_back(e);
    }
    return {static_cast<int>(entries.size()), entries.data()};
  }

private:
  amqp_bytes_t keep(std::string s) { return bytes_of(m_strings.emplace_back(std::move(s))); }

  amqp_field_value_t field(const Json& v) {
    amqp_field_value_t f{};
    switch (v.type()) {
    case Json::value_t::null:
    case Json::value_t::discarded:
      f.kind = AMQP_FIELD_KIND_VOID;
      break;
    case Json::value_t::boolean:
      f.kind = AMQP_FIELD_KIND_BOOLEAN;
      f.value.boolean = v.get<bool>() ? 1 : 0;
      break;
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned: {
      // py-amqp: int32 when it fits, int64 otherwise.
      if (v.is_number_unsigned() &&
          v.get<std::uint64_t>() >
              static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        f.kind = AMQP_FIELD_KIND_U64;
        f.value.u64 = v.get<std::uint64_t>();
        break;
      }
      auto n = v.get<std::int64_t>();
      if (n >= std::numeric_limits<std::int32_t>::min() &&
          n <= std::numeric_limits<std::int32_t>::max()) {
        f.kind = AMQP_FIELD_KIND_I32;
        f.value.i32 = static_cast<std::int32_t>(n);
      } else {
        f.kind = AMQP_FIELD_KIND_I64;
        f.value.i64 = n;
      }
      break;
    }
    case Json::value_t::number_float:
      f.kind = AMQP_FIELD_KIND_F64;
      f.value.f64 = v.get<double>();
      break;
    case Json::value_t::string:
      f.kind = AMQP_FIELD_KIND_UTF8;
      f.value.bytes = keep(v.get<std::string>());
      break;
    case Json::value_t::binary:
      f.kind = AMQP_FIELD_KIND_BYTES;
      f.value.bytes = keep(std::string(v.get_binary().begin(), v.get_binary().end()));
      break;
    case Json::value_t::array: {
      auto& items = m_arrays.emplace_back();
      items.reserve(v.size());
      for (const auto& item : v) {
        items.push_back(field(item));
      }
      f.kind = AMQP_FIELD_KIND_ARRAY;
      f.value.array = {static_cast<int>(items.size()), items.data()};
      break;
    }
    case Json::value_t::object:
      f.kind = AMQP_FIELD_KIND_TABLE;
      f.value.table = table(v);
      break;
    }
    return f;
  }

  // Lists, not vectors: what was handed out must never move.
  std::list<std::string> m_strings;
  std::list<std::vector<amqp_table_entry_t>> m_entries;
  std::list<std::vector<amqp_field_value_t>> m_arrays;
};

Json from_field(const amqp_field_value_t& f);

Json from_table(const amqp_table_t& t) {
  Json out = Json::object();
  for (int i = 0; i < t.num_entries; ++i) {
    out[to_string(t.entries[i].key)] = from_field(t.entries[i].value);
  }
  return out;
}

Json from_field(const amqp_field_value_t& f) {
  switch (f.kind) {
  case AMQP_FIELD_KIND_BOOLEAN:
    return Json(f.value.boolean != 0);
  case AMQP_FIELD_KIND_I8:
    return Json(f.value.i8);
  case AMQP_FIELD_KIND_U8:
    return Json(f.value.u8);
  case AMQP_FIELD_KIND_I16:
    return Json(f.value.i16);
  case AMQP_FIELD_KIND_U16:
    return Json(f.value.u16);
  case AMQP_FIELD_KIND_I32:
    return Json(f.value.i32);
  case AMQP_FIELD_KIND_U32:
    return Json(f.value.u32);
  case AMQP_FIELD_KIND_I64:
    return Json(f.value.i64);
  case AMQP_FIELD_KIND_U64:
  case AMQP_FIELD_KIND_TIMESTAMP:
    return Json(f.value.u64);
  case AMQP_FIELD_KIND_F32:
    return std::isfinite(f.value.f32) ? Json(static_cast<double>(f.value.f32)) : Json();
  case AMQP_FIELD_KIND_F64:
    return std::isfinite(f.value.f64) ? Json(f.value.f64) : Json();
  case AMQP_FIELD_KIND_DECIMAL:
    return Json(static_cast<double>(f.value.decimal.value) /
                std::pow(10.0, static_cast<double>(f.value.decimal.decimals)));
  case AMQP_FIELD_KIND_UTF8:
  case AMQP_FIELD_KIND_BYTES:
    return Json(to_string(f.value.bytes));
  case AMQP_FIELD_KIND_ARRAY: {
    Json out = Json::array();
    for (int i = 0; i < f.value.array.num_entries; ++i) {
      out.push_back(from_field(f.value.array.entries[i]));
    }
    return out;
  }
  case AMQP_FIELD_KIND_TABLE:
    return from_table(f.value.table);
  default: // AMQP_FIELD_KIND_VOID and kinds this library does not know
    return Json();
  }
}

Result<std::uint16_t> parse_port(std::string_view s) {
  std::uint16_t port = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), port);
  if (ec != std::errc() || p != s.data() + s.size() || port == 0) {
    return make_error(fmt::format("'{}' is not a port number", s));
  }
  return port;
}

} // namespace

// --- URL ----------------------------------------------------------------------------------------

std::string AmqpUrl::describe() const {
  const bool ipv6 = host.find(':') != std::string::npos;
  return fmt::format("amqp://{}@{}{}{}:{}/{}", user, ipv6 ? "[" : "", host, ipv6 ? "]" : "", port,
                     vhost == "/" ? "/" : vhost);
}

bool is_amqp_url(std::string_view url) {
  return url.starts_with("amqp://") || url.starts_with("pyamqp://") || url.starts_with("amqps://");
}

Result<AmqpUrl> parse_amqp_url(std::string_view url) {
  const auto bad = [&](std::string_view why) {
    return make_error(fmt::format("broker URL '{}': {}", url, why));
  };
  std::string_view rest;
  if (url.starts_with("amqp://")) {
    rest = url.substr(7);
  } else if (url.starts_with("pyamqp://")) {
    rest = url.substr(9);
  } else if (url.starts_with("amqps://")) {
    return bad("TLS (amqps://) is not supported; use amqp:// on a trusted network");
  } else {
    return bad("not an amqp:// URL");
  }
  AmqpUrl u;
  std::string_view path;
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    path = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
  }
  if (path.find_first_of("?#") != std::string_view::npos) {
    return bad("query strings are not supported");
  }
  if (auto at = rest.rfind('@'); at != std::string_view::npos) {
    std::string_view creds = rest.substr(0, at);
    rest = rest.substr(at + 1);
    std::string_view user = creds;
    std::string_view password;
    bool has_password = false;
    if (auto colon = creds.find(':'); colon != std::string_view::npos) {
      user = creds.substr(0, colon);
      password = creds.substr(colon + 1);
      has_password = true;
    }
    auto decoded_user = percent_decode(user);
    auto decoded_password = percent_decode(password);
    if (!decoded_user || !decoded_password) {
      return bad("bad percent-escape in the user or password");
    }
    if (!user.empty()) {
      u.user = *decoded_user;
    }
    if (has_password) {
      u.password = *decoded_password;
    }
  }
  if (rest.starts_with('[')) {
    auto close = rest.find(']');
    if (close == std::string_view::npos) {
      return bad("unterminated [IPv6 address]");
    }
    u.host = std::string(rest.substr(1, close - 1));
    rest = rest.substr(close + 1);
    if (rest.starts_with(':')) {
      u.port = PSS_TRY(parse_port(rest.substr(1)));
    } else if (!rest.empty()) {
      return bad("junk after the [IPv6 address]");
    }
  } else {
    if (auto colon = rest.rfind(':'); colon != std::string_view::npos) {
      auto port = parse_port(rest.substr(colon + 1));
      if (!port) {
        return bad(port.error().message);
      }
      u.port = *port;
      rest = rest.substr(0, colon);
    }
    if (!rest.empty()) {
      u.host = std::string(rest);
    }
  }
  if (!path.empty()) {
    auto vhost = percent_decode(path);
    if (!vhost) {
      return bad("bad percent-escape in the virtual host");
    }
    u.vhost = *vhost;
  }
  return u;
}

// --- Connection --------------------------------------------------------------------------------

struct Amqp::State {
  amqp_connection_state_t conn = nullptr;
  std::string where; // for messages: "amqp://guest@127.0.0.1:5672//"
  std::chrono::milliseconds timeout{0};
  bool confirms = false;
  std::uint64_t published = 0; // with confirms: the broker numbers them from 1
  ~State() {
    if (conn != nullptr) {
      amqp_destroy_connection(conn); // closes the socket without a handshake
    }
  }
};

Amqp::Amqp(std::unique_ptr<State> s) : m_state(std::move(s)) {}
Amqp::Amqp(Amqp&&) noexcept = default;
Amqp& Amqp::operator=(Amqp&&) noexcept = default;

Amqp::~Amqp() {
  if (m_state && m_state->conn != nullptr && !m_broken) {
    // A clean close: the broker requeues our unacknowledged deliveries at once either way,
    // but logs no "client unexpectedly closed TCP connection".
    amqp_channel_close(m_state->conn, k_channel, AMQP_REPLY_SUCCESS);
    amqp_connection_close(m_state->conn, AMQP_REPLY_SUCCESS);
  }
}

Error Amqp::fail(std::string_view what) {
  m_broken = true;
  return make_error(fmt::format("AMQP broker {}: {}", m_state->where, what));
}

Result<Amqp> Amqp::connect(const AmqpUrl& url, std::chrono::milliseconds timeout, int heartbeat) {
  auto state = std::make_unique<State>();
  state->where = url.describe();
  state->timeout = timeout;
  const auto error = [&](std::string_view what) {
    return make_error(fmt::format("AMQP broker {}: {}", state->where, what));
  };
  state->conn = amqp_new_connection();
  if (state->conn == nullptr) {
    return error("out of memory");
  }
  amqp_socket_t* socket = amqp_tcp_socket_new(state->conn);
  if (socket == nullptr) {
    return error("cannot create a socket");
  }
  const timeval tv = to_timeval(timeout);
  amqp_set_handshake_timeout(state->conn, &tv);
  amqp_set_rpc_timeout(state->conn, &tv);
  if (int rc = amqp_socket_open_noblock(socket, url.host.c_str(), url.port, &tv);
      rc != AMQP_STATUS_OK) {
    return error(fmt::format("cannot connect: {}", amqp_error_string2(rc)));
  }
  auto login = amqp_login(state->conn, url.vhost.c_str(), 0, AMQP_DEFAULT_FRAME_SIZE, heartbeat,
                          AMQP_SASL_METHOD_PLAIN, url.user.c_str(), url.password.c_str());
  if (login.reply_type != AMQP_RESPONSE_NORMAL) {
    return error(fmt::format("login as '{}' on vhost '{}' failed: {}", url.user, url.vhost,
                             describe_reply(login)));
  }
  amqp_channel_open(state->conn, k_channel);
  if (auto r = amqp_get_rpc_reply(state->conn); r.reply_type != AMQP_RESPONSE_NORMAL) {
    return error(fmt::format("cannot open a channel: {}", describe_reply(r)));
  }
  return Amqp(std::move(state));
}

Result<void> Amqp::declare_queue(const std::string& queue) {
  amqp_connection_state_t c = m_state->conn;
  amqp_exchange_declare(c, k_channel, bytes_of(queue), amqp_cstring_bytes("direct"), 0, 1, 0, 0,
                        amqp_empty_table);
  if (auto r = amqp_get_rpc_reply(c); r.reply_type != AMQP_RESPONSE_NORMAL) {
    return fail(fmt::format("cannot declare exchange '{}': {}", queue, describe_reply(r)));
  }
  amqp_queue_declare(c, k_channel, bytes_of(queue), 0, 1, 0, 0, amqp_empty_table);
  if (auto r = amqp_get_rpc_reply(c); r.reply_type != AMQP_RESPONSE_NORMAL) {
    return fail(fmt::format("cannot declare queue '{}': {}", queue, describe_reply(r)));
  }
  amqp_queue_bind(c, k_channel, bytes_of(queue), bytes_of(queue), bytes_of(queue),
                  amqp_empty_table);
  if (auto r = amqp_get_rpc_reply(c); r.reply_type != AMQP_RESPONSE_NORMAL) {
    return fail(fmt::format("cannot bind queue '{}': {}", queue, describe_reply(r)));
  }
  return {};
}

Result<void> Amqp::publish(const std::string& queue, const AmqpMessage& m) {
  TableBuilder tables;
  amqp_basic_properties_t props{};
  props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_CONTENT_ENCODING_FLAG |
                 AMQP_BASIC_HEADERS_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
                 AMQP_BASIC_PRIORITY_FLAG | AMQP_BASIC_CORRELATION_ID_FLAG |
                 AMQP_BASIC_REPLY_TO_FLAG;
  props.content_type = bytes_of(m.content_type);
  props.content_encoding = bytes_of(m.content_encoding);
  props.headers = tables.table(m.headers.is_object() ? m.headers : Json::object());
  props.delivery_mode = static_cast<std::uint8_t>(m.delivery_mode);
  props.priority = static_cast<std::uint8_t>(std::clamp(m.priority, 0, 255));
  props.correlation_id = bytes_of(m.correlation_id);
  props.reply_to = bytes_of(m.reply_to);
  if (m.expiration) {
    props._flags |= AMQP_BASIC_EXPIRATION_FLAG;
    props.expiration = bytes_of(*m.expiration);
  }
  int rc = amqp_basic_publish(m_state->conn, k_channel, amqp_empty_bytes, bytes_of(queue), 0, 0,
                              &props, bytes_of(m.body));
  if (rc != AMQP_STATUS_OK) {
    return fail(fmt::format("cannot publish to '{}': {}", queue, amqp_error_string2(rc)));
  }
  if (!m_state->confirms) {
    return {};
  }
  const std::uint64_t seq = ++m_state->published;
  const auto deadline = std::chrono::steady_clock::now() + m_state->timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      return fail(fmt::format("no confirm of a message to '{}' within {} ms", queue,
                              m_state->timeout.count()));
    }
    const timeval tv = to_timeval(left);
    amqp_frame_t frame{};
    if (int wait = amqp_simple_wait_frame_noblock(m_state->conn, &frame, &tv);
        wait != AMQP_STATUS_OK) {
      if (wait == AMQP_STATUS_TIMEOUT) {
        continue;
      }
      return fail(fmt::format("waiting for the confirm: {}", amqp_error_string2(wait)));
    }
    if (frame.frame_type != AMQP_FRAME_METHOD) {
      continue;
    }
    const amqp_method_t& method = frame.payload.method;
    if (method.id == AMQP_BASIC_ACK_METHOD) {
      const auto* ack = static_cast<const amqp_basic_ack_t*>(method.decoded);
      if (ack->delivery_tag == seq || (ack->multiple && ack->delivery_tag >= seq)) {
        return {};
      }
    } else if (method.id == AMQP_BASIC_NACK_METHOD) {
      return fail(fmt::format("the broker refused a message to '{}' (basic.nack)", queue));
    } else if (method.id == AMQP_CHANNEL_CLOSE_METHOD ||
               method.id == AMQP_CONNECTION_CLOSE_METHOD) {
      amqp_rpc_reply_t closed{};
      closed.reply_type = AMQP_RESPONSE_SERVER_EXCEPTION;
      closed.reply = method;
      return fail(describe_reply(closed));
    }
  }
}

Result<void> Amqp::confirm_select() {
  amqp_confirm_select(m_state->conn, k_channel);
  if (auto r = amqp_get_rpc_reply(m_state->conn); r.reply_type != AMQP_RESPONSE_NORMAL) {
    return fail(fmt::format("confirm.select: {}", describe_reply(r)));
  }
  m_state->confirms = true;
  m_state->published = 0;
  return {};
}

Result<void> Amqp::consume(const std::string& queue, std::uint16_t prefetch) {
  amqp_connection_state_t c = m_state->conn;
  // global = true, as Celery sets it on RabbitMQ (one budget for the channel).
  amqp_basic_qos(c, k_channel, 0, prefetch, 1);
  if (auto r = amqp_get_rpc_reply(c); r.reply_type != AMQP_RESPONSE_NORMAL) {
    return fail(fmt::format("basic.qos: {}", describe_reply(r)));
  }
  amqp_basic_consume(c, k_channel, bytes_of(queue), amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
  if (auto r = amqp_get_rpc_reply(c); r.reply_type != AMQP_RESPONSE_NORMAL) {
    return fail(fmt::format("cannot consume queue '{}': {}", queue, describe_reply(r)));
  }
  return {};
}

Result<std::optional<AmqpReceived>> Amqp::next(std::chrono::milliseconds wait) {
  amqp_connection_state_t c = m_state->conn;
  amqp_maybe_release_buffers(c);
  amqp_envelope_t env{};
  const timeval tv = to_timeval(wait);
  auto r = amqp_consume_message(c, &env, &tv, 0);
  if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_TIMEOUT) {
    return std::optional<AmqpReceived>();
  }
  if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
      r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
    // Not a delivery: read the frame; a close of the channel or the connection ends it.
    amqp_frame_t frame{};
    if (int rc = amqp_simple_wait_frame_noblock(c, &frame, &tv); rc != AMQP_STATUS_OK) {
      if (rc == AMQP_STATUS_TIMEOUT) {
        return std::optional<AmqpReceived>();
      }
      return fail(amqp_error_string2(rc));
    }
    if (frame.frame_type == AMQP_FRAME_METHOD) {
      amqp_rpc_reply_t closed{};
      closed.reply_type = AMQP_RESPONSE_SERVER_EXCEPTION;
      closed.reply = frame.payload.method;
      if (frame.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
          frame.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD) {
        return fail(describe_reply(closed));
      }
    }
    return std::optional<AmqpReceived>(); // a basic.ack, a return...: nothing for us
  }
  if (r.reply_type != AMQP_RESPONSE_NORMAL) {
    return fail(describe_reply(r));
  }
  AmqpReceived out;
  const amqp_basic_properties_t& p = env.message.properties;
  AmqpMessage& m = out.message;
  m.body = to_string(env.message.body);
  m.content_type = (p._flags & AMQP_BASIC_CONTENT_TYPE_FLAG) ? to_string(p.content_type) : "";
  m.content_encoding =
      (p._flags & AMQP_BASIC_CONTENT_ENCODING_FLAG) ? to_string(p.content_encoding) : "";
  m.headers = (p._flags & AMQP_BASIC_HEADERS_FLAG) ? from_table(p.headers) : Json::object();
  m.delivery_mode = (p._flags & AMQP_BASIC_DELIVERY_MODE_FLAG) ? p.delivery_mode : 1;
  m.priority = (p._flags & AMQP_BASIC_PRIORITY_FLAG) ? p.priority : 0;
  if (p._flags & AMQP_BASIC_CORRELATION_ID_FLAG) {
    m.correlation_id = to_string(p.correlation_id);
  }
  if (p._flags & AMQP_BASIC_REPLY_TO_FLAG) {
    m.reply_to = to_string(p.reply_to);
  }
  if (p._flags & AMQP_BASIC_EXPIRATION_FLAG) {
    m.expiration = to_string(p.expiration);
  }
  out.tag = env.delivery_tag;
  out.delivery.exchange = to_string(env.exchange);
  out.delivery.routing_key = to_string(env.routing_key);
  out.delivery.redelivered = env.redelivered != 0;
  amqp_destroy_envelope(&env);
  return std::optional<AmqpReceived>(std::move(out));
}

Result<void> Amqp::ack(std::uint64_t tag) {
  if (int rc = amqp_basic_ack(m_state->conn, k_channel, tag, 0); rc != AMQP_STATUS_OK) {
    return fail(fmt::format("basic.ack: {}", amqp_error_string2(rc)));
  }
  return {};
}

Result<void> Amqp::reject(std::uint64_t tag, bool requeue) {
  if (int rc = amqp_basic_reject(m_state->conn, k_channel, tag, requeue ? 1 : 0);
      rc != AMQP_STATUS_OK) {
    return fail(fmt::format("basic.reject: {}", amqp_error_string2(rc)));
  }
  return {};
}

Result<Json> amqp_table_round_trip(const Json& headers) {
  TableBuilder tables;
  amqp_table_t table = tables.table(headers);
  std::vector<char> buf(1 << 20);
  std::size_t offset = 0;
  if (int rc = amqp_encode_table({buf.size(), buf.data()}, &table, &offset); rc != AMQP_STATUS_OK) {
    return make_error(fmt::format("encoding the table: {}", amqp_error_string2(rc)));
  }
  amqp_pool_t pool;
  init_amqp_pool(&pool, 4096);
  amqp_table_t decoded{};
  std::size_t read = 0;
  int rc = amqp_decode_table({offset, buf.data()}, &pool, &decoded, &read);
  Result<Json> out =
      rc == AMQP_STATUS_OK
          ? Result<Json>(from_table(decoded))
          : Result<Json>(make_error(fmt::format("decoding the table: {}", amqp_error_string2(rc))));
  empty_amqp_pool(&pool);
  return out;
}

} // namespace pss::celery
