// Two-tier errors: expected failures are values (Result<T>), aborts are exceptions.
#pragma once

#include <boost/system/result.hpp>
#include <iosfwd>
#include <stdexcept>
#include <string>
#include <utility>

namespace pss {

// An expected failure, with a message a user can act on ("cannot open 'x': No such file").
// Built only by make_error() (and errno_error()): a private constructor keeps
// Result<std::string> unambiguous, since a string could otherwise become either side.
class Error {
public:
  Error() = default; // result<T, E>::error() needs it
  std::string message;

private:
  explicit Error(std::string m) : message(std::move(m)) {}
  friend Error make_error(std::string message);
};

std::ostream& operator<<(std::ostream& os, const Error& e);

// Result of an operation that can fail in an expected way.
template <typename T>
using Result = boost::system::result<T, Error>;

// Thrown by Result::value() on an Error; also the exception for aborts. main() prints it.
class Fatal : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

[[noreturn]] void throw_exception_from_error(const Error& e, const boost::source_location& loc);

// The one way to build an Error: `return make_error(fmt::format("...", x));`.
inline Error make_error(std::string message) {
  return Error(std::move(message));
}

// Adds context to an exception on its way up: "while starting engine clamav: ...".
[[noreturn]] void rethrow_with_context(const std::string& context);

} // namespace pss

// Propagate an Error: `auto v = PSS_TRY(f());`. GNU statement expression (g++/clang).
#define PSS_TRY(expr)                                                                              \
  __extension__({                                                                                  \
    auto pss_try_r_ = (expr);                                                                      \
    if (!pss_try_r_) {                                                                             \
      return pss_try_r_.error();                                                                   \
    }                                                                                              \
    std::move(*pss_try_r_);                                                                        \
  })

// Propagate the Error of a Result<void>: `PSS_TRY_VOID(check(x));`.
#define PSS_TRY_VOID(expr)                                                                         \
  do {                                                                                             \
    auto pss_try_r_ = (expr);                                                                      \
    if (!pss_try_r_) {                                                                             \
      return pss_try_r_.error();                                                                   \
    }                                                                                              \
  } while (false)
